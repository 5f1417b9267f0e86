import { describe, expect, it } from "vitest";
import { TestSocket, api, createGroup, mintUser } from "./helpers";

describe("smoke", () => {
  it("health and a group round-trip over a socket", async () => {
    expect((await api("GET", "/healthz")).status).toBe(200);
    const alice = await mintUser();
    const bob = await mintUser();
    const conv = await createGroup(alice, [bob]);
    const a = await TestSocket.conversation(conv.id, alice, { since: 0 });
    const b = await TestSocket.conversation(conv.id, bob, { since: 0 });
    await a.next("caught_up");
    await b.next("caught_up");
    a.send({ type: "send", clientMsgId: "c1", body: "hello" });
    const ack = await a.next("ack");
    expect(ack.seq).toBe(1);
    const got = await b.next("message");
    expect(got.message.body).toBe("hello");
    a.close();
    b.close();
  });
});
