// docs/protocol.md section 1: integers in a URL are decimal digits, and leading zeros do not change the value
// (`v=01` is version 1), within each parameter's digit limit. Both sockets and the REST queries agree.
import { expect, it } from "vitest";
import { TestSocket, api, createGroup, mintUser } from "./helpers";

it("reads v=01, since=007 and limit=050 as 1, 7 and 50, and still refuses too many digits", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const g = await createGroup(a, [b]);
  const path = `/v1/conversations/${g.id}/ws`;
  const writer = await TestSocket.conversation(g.id, a);
  await writer.next("caught_up");
  writer.send({ type: "send_batch", messages: Array.from({ length: 10 }, (_, i) => ({ clientMsgId: `z${i}`, body: `zero ${i + 1}` })) });
  await writer.waitForMessages(10);
  writer.close();

  for (const v of ["01", "0001"]) {
    const s = await TestSocket.open(path, { v, token: b.token, since: "007" });
    expect(await s.next("welcome"), `v=${v}`).toMatchObject({ protocol: 1, lastSeq: 10, reset: false });
    await s.next("caught_up");
    expect(s.messages().map((m) => m.seq), `v=${v}`).toEqual([8, 9, 10]);
    s.close();
    const user = await TestSocket.open("/v1/me/ws", { v, token: b.token });
    expect(await user.nextAny((f) => f.type === "hello"), `user socket v=${v}`).toMatchObject({ protocol: 1 });
    user.close();
  }
  // The digit limit counts the zeros: 5 digits is not a version, whatever their value.
  for (const [p, params] of [
    [path, { v: "00001", token: b.token }],
    ["/v1/me/ws", { v: "00001", token: b.token }],
    [path, { v: "03", token: b.token }],
  ] as const) {
    const s = await TestSocket.open(p, params);
    expect((await s.closed).code, `${p} v=${params.v}`).toBe(params.v === "03" ? 4426 : 4400);
  }

  const page = await api("GET", `/v1/conversations/${g.id}/messages?after=0002&limit=005`, { token: b.token });
  expect(page.status).toBe(200);
  expect(page.body.messages.map((m: { seq: number }) => m.seq)).toEqual([3, 4, 5, 6, 7]);
  expect((await api("GET", `/v1/conversations/${g.id}/messages?limit=00050`, { token: b.token })).status).toBe(400);
});
