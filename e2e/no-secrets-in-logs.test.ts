// Everything the server and the local runtime print while handling sign-up, login failures, token refresh and
// reuse, sockets that carry tokens (subprotocol and query), bad frames and failing push deliveries: no password,
// token or secret may appear in it.
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLocalServer, type LocalServer } from "./server.ts";
import { NodeSocket, http } from "./client.ts";

let server: LocalServer;
const captured: string[] = [];
const restore: (() => void)[] = [];

function capture() {
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream);
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      captured.push(String(chunk));
      return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    restore.push(() => (stream.write = original));
  }
  for (const level of ["log", "info", "warn", "error", "debug"] as const) {
    const original = console[level];
    console[level] = (...args: unknown[]) => {
      captured.push(args.map(String).join(" "));
      original(...args);
    };
    restore.push(() => (console[level] = original));
  }
}

beforeAll(async () => {
  capture();
  // Push to a closed port: every delivery fails and is logged.
  server = await startLocalServer({
    vars: { PUSH_WEBHOOK_URL: "http://127.0.0.1:9/push", PUSH_WEBHOOK_SECRET: "push-secret-never-logged", PUSH_RETRY_BASE_SECONDS: "0" },
  });
});
afterAll(async () => {
  await server?.stop();
  for (const r of restore.reverse()) r();
});

it("keeps passwords, tokens and secrets out of every log line", async () => {
  const password = `pw-${Date.now()}-do-not-log`;
  const username = `logs${Date.now().toString(36)}`;
  const signup = (await http(server.url, "POST", "/v1/auth/signup", { body: { username, password } })).body;
  await http(server.url, "POST", "/v1/auth/login", { body: { username, password: `${password}-wrong` } });
  const refreshed = (await http(server.url, "POST", "/v1/auth/refresh", { body: { refreshToken: signup.refreshToken } })).body;
  await http(server.url, "POST", "/v1/auth/refresh", { body: { refreshToken: signup.refreshToken } }); // reuse
  const other = (await http(server.url, "POST", "/v1/admin/tokens", { token: server.adminSecret, body: { userId: "ext-logpeer", username: "logpeer" } })).body;
  const dm = (await http(server.url, "POST", "/v1/conversations", { token: refreshed.accessToken, body: { type: "direct", userId: other.user.id } })).body.conversation;

  // A socket with the token in the query string (allowed, discouraged) and one with a forged token.
  const s = await NodeSocket.open(`${server.wsUrl}/v1/conversations/${dm.id}/ws?v=1&since=0&token=${refreshed.accessToken}`);
  await s.frame("caught_up");
  s.ws.send("{not json");
  await s.frame("error");
  s.send({ type: "send", clientMsgId: "log-1", body: "hello; the peer is offline, so a push is attempted" });
  await s.frame("ack");
  const forged = await NodeSocket.open(`${server.wsUrl}/v1/conversations/${dm.id}/ws?v=1&token=${refreshed.accessToken}x`);
  expect((await forged.closed).code).toBe(4401);
  await s.close();
  // Wait until the failing push has been attempted (and logged) a few times.
  const start = Date.now();
  while (!captured.some((l) => l.includes('"at":"push"')) && Date.now() - start < 20_000) await new Promise((r) => setTimeout(r, 100));
  expect(captured.some((l) => l.includes('"at":"push"'))).toBe(true);

  const secrets = [
    password,
    signup.accessToken,
    signup.refreshToken,
    refreshed.accessToken,
    refreshed.refreshToken,
    other.accessToken,
    server.adminSecret,
    "e2e-auth-secret-0123456789",
    "push-secret-never-logged",
  ];
  const leaks = captured.filter((line) => secrets.some((secret) => line.includes(secret)));
  expect(leaks).toEqual([]);
}, 60_000);
