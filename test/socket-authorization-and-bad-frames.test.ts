import { describe, expect, it } from "vitest";
import { env } from "cloudflare:test";
import { sign } from "hono/jwt";
import { TestSocket, api, createGroup, mintUser, sendRest } from "./helpers";

async function token(claims: Record<string, unknown>, secret = env.AUTH_SECRET) {
  const now = Math.floor(Date.now() / 1000);
  return sign({ typ: "access", iat: now, exp: now + 60, ...claims }, secret, "HS256");
}

describe("who may connect", () => {
  it("refuses non-members, forged and expired tokens, missing or unsupported versions, each with its close code", async () => {
    const [a, b, outsider] = [await mintUser(), await mintUser(), await mintUser()];
    const g = await createGroup(a, [b]);
    const path = `/v1/conversations/${g.id}/ws`;
    const cases: [Record<string, string | number | undefined>, number][] = [
      [{ v: 1, token: outsider.token }, 4403],
      [{ v: 1, token: await token({ sub: a.id, name: a.username }, "not-the-secret") }, 4401],
      [{ v: 1, token: await token({ sub: a.id, name: a.username, exp: Math.floor(Date.now() / 1000) - 10 }) }, 4440],
      [{ v: 1, token: "garbage" }, 4401],
      [{ v: 1 }, 4401],
      [{ token: a.token }, 4400],
      [{ v: 3, token: a.token }, 4426],
      [{ v: 1, token: a.token, since: "-1" }, 4400],
      [{ v: 1, token: a.token, since: "abc" }, 4400],
      [{ v: 1, token: a.token, presence: "2" }, 4400],
      [{ v: 1, token: a.token, presence: "" }, 4400],
    ];
    for (const [params, code] of cases) {
      const s = await TestSocket.open(path, params);
      expect((await s.closed).code, JSON.stringify(params)).toBe(code);
    }
    // The token may also travel in the subprotocol list (browsers cannot set headers).
    const viaProtocol = await TestSocket.open(path, { v: 1 }, { headers: { "Sec-WebSocket-Protocol": `edgechat.v1, bearer.${a.token}` } });
    expect(await viaProtocol.next("welcome")).toMatchObject({ userId: a.id });
    viaProtocol.close();
    // An unknown conversation looks exactly like one you are not in.
    const nowhere = await TestSocket.open("/v1/conversations/g_doesnotexist/ws", { v: 1, token: a.token });
    expect((await nowhere.closed).code).toBe(4403);
    // Plain GET without the upgrade.
    const plain = await api("GET", path);
    expect(plain.status).toBe(426);
  });

  it("identity comes from the verified token only: a client header cannot impersonate", async () => {
    const [a, b] = [await mintUser(), await mintUser()];
    const g = await createGroup(a, [b]);
    const s = await TestSocket.open(`/v1/conversations/${g.id}/ws`, { v: 1, token: b.token }, {
      headers: { "X-Edgechat-Identity": JSON.stringify({ userId: a.id, username: a.username, exp: 9999999999 }) },
    });
    expect(await s.next("welcome")).toMatchObject({ userId: b.id });
    s.send({ type: "send", clientMsgId: "who", body: "am I" });
    expect((await s.next("message")).message.senderId).toBe(b.id);
    s.close();
  });

  it("non-members cannot read or send over REST", async () => {
    const [a, outsider] = [await mintUser(), await mintUser()];
    const g = await createGroup(a, []);
    expect((await api("GET", `/v1/conversations/${g.id}`, { token: outsider.token })).status).toBe(403);
    expect((await api("GET", `/v1/conversations/${g.id}/messages`, { token: outsider.token })).status).toBe(403);
    const send = await sendRest(outsider, g.id, "x");
    expect(send.status).toBe(403);
    expect(send.body.error.code).toBe("not_a_member");
    expect((await api("GET", `/v1/conversations/${g.id}`)).status).toBe(401);
  });
});

describe("bad frames", () => {
  it("get an error frame, keep the socket open, and change nothing", async () => {
    const [a, b] = [await mintUser(), await mintUser()];
    const g = await createGroup(a, [b]);
    const s = await TestSocket.conversation(g.id, a, { since: 0 });
    await s.next("caught_up");
    const bad: [unknown, string][] = [
      ["{not json", "invalid_json"],
      ["[1,2]", "validation_failed"],
      ['"just a string"', "validation_failed"],
      [{ type: "launch_missiles" }, "unknown_frame_type"],
      [{ nope: 1 }, "validation_failed"],
      [{ type: "send", clientMsgId: "c1" }, "validation_failed"],
      [{ type: "send", clientMsgId: "c1", body: "" }, "validation_failed"],
      [{ type: "send", clientMsgId: "c1", body: 42 }, "validation_failed"],
      [{ type: "send", clientMsgId: "has space", body: "x" }, "validation_failed"],
      [{ type: "send", clientMsgId: "c1", body: "\ud800 lone surrogate" }, "validation_failed"],
      [{ type: "send", clientMsgId: "c2", body: "é".repeat(4097) }, "body_too_large"],
      [{ type: "send", clientMsgId: "c3", body: "x".repeat(70_000) }, "frame_too_large"],
      [{ type: "send_batch", messages: [] }, "validation_failed"],
      [{ type: "send_batch", messages: Array.from({ length: 51 }, (_, i) => ({ clientMsgId: `b${i}`, body: "x" })) }, "validation_failed"],
      [{ type: "send", clientMsgId: "c4", body: "x", __proto__: { admin: true } }, "ok"],
    ];
    for (const [frame, code] of bad) {
      s.send(frame);
      if (code === "ok") {
        expect((await s.next("ack")).clientMsgId).toBe("c4");
        continue;
      }
      const err = await s.next("error");
      expect(err.code, JSON.stringify(frame).slice(0, 80)).toBe(code);
      expect(err.message.length).toBeGreaterThan(0);
    }
    // The error names the clientMsgId when it concerns one.
    s.send({ type: "send", clientMsgId: "named", body: "é".repeat(5000) });
    expect(await s.next("error")).toMatchObject({ code: "body_too_large", clientMsgId: "named" });
    // Still open and healthy; only the one valid message exists.
    s.send({ type: "send", clientMsgId: "fine", body: "still here" });
    expect(await s.next("ack")).toMatchObject({ seq: 2 });
    const history = await api("GET", `/v1/conversations/${g.id}/messages`, { token: a.token });
    expect(history.body.messages.map((m: { clientMsgId: string }) => m.clientMsgId)).toEqual(["c4", "fine"]);
    s.send('{"type":"ping"}');
    await s.next("pong");
    s.close();
  });

  it("a body of exactly the limit is accepted, one byte more is not", async () => {
    const a = await mintUser();
    const g = await createGroup(a, []);
    expect((await sendRest(a, g.id, "max", "x".repeat(8192))).status).toBe(201);
    const over = await sendRest(a, g.id, "over", "x".repeat(8193));
    expect(over.status).toBe(413);
    expect(over.body.error.code).toBe("body_too_large");
  });
});
