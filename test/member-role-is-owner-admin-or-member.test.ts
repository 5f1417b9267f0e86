// The wire schema of a member reference accepts only the three roles of the protocol (4.2), so a client
// validating server frames with it rejects anything else rather than trusting an arbitrary string.
import { expect, it } from "vitest";
import { parseServerFrame } from "../src/protocol/frames";

it("members_changed carries owner, admin or member, nothing else", () => {
  const frame = (role: string) => JSON.stringify({ type: "members_changed", added: [{ userId: "u1", username: "ann", role }], removed: [] });
  for (const role of ["owner", "admin", "member"]) expect(parseServerFrame(frame(role)).ok).toBe(true);
  for (const role of ["root", "", "Owner"]) expect(parseServerFrame(frame(role))).toMatchObject({ ok: false, code: "validation_failed" });
});
