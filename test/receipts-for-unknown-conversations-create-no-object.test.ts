// Item 9 of issue 11: a receipt names its conversation by a client-supplied id, and was routed to that id's
// object whatever it was: receipts for made-up ids created blank conversation objects at any rate. Now the
// user's own object checks membership first (its inbox, then the D1 directory) and a made-up id reaches no
// conversation object.
import { expect, it } from "vitest";
import { env, listDurableObjectIds } from "cloudflare:test";
import { TestSocket, api, createGroup, mintUser } from "./helpers";

async function conversationObjectExists(conversationId: string): Promise<boolean> {
  const wanted = env.CONVERSATIONS.idFromName(conversationId).toString();
  return (await listDurableObjectIds(env.CONVERSATIONS)).some((id) => id.toString() === wanted);
}

it("receipts for made-up conversation ids are refused without creating a conversation object", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const madeUp = ["g_01m8made0up0000000000000000", "dm_0123456789abcdef0123456789abcdef01234567"];

  const rest = await api("POST", `/v1/conversations/${madeUp[0]}/receipts`, { token: alice.token, body: { delivered: 5, read: 5 } });
  expect(rest.status).toBe(403);
  expect(rest.body.error.code).toBe("not_a_member");

  const user = await TestSocket.user(alice);
  await user.nextAny((f) => f.type === "hello");
  user.send({ type: "receipt", conversationId: madeUp[1], read: 3 });
  expect(await user.nextAny((f) => f.type === "error")).toMatchObject({ code: "not_a_member" });
  user.close();

  for (const id of madeUp) expect(await conversationObjectExists(id), id).toBe(false);

  // A real member is not affected, even straight after creation (before its inbox row has arrived).
  const conv = await createGroup(alice, [bob]);
  const own = await api("POST", `/v1/conversations/${conv.id}/receipts`, { token: bob.token, body: { delivered: 0, read: 0 } });
  expect(own.status).toBe(204);
  // A real conversation you are not in: refused the same way.
  const carol = await mintUser();
  const other = await api("POST", `/v1/conversations/${conv.id}/receipts`, { token: carol.token, body: { read: 1 } });
  expect(other.status).toBe(403);
});
