// The transport against a scripted `ws` server: token refresh on 4440, terminal codes, heartbeat.
import { afterEach, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { CloseCode, PING_FRAME, ReconnectingSocket, type ConnectionError, type TokenReason, type WebSocketConstructor } from "../src/index";
import { until } from "./net";

const WS: WebSocketConstructor = WebSocket;
let server: WebSocketServer | null = null;
let client: ReconnectingSocket | null = null;

afterEach(async () => {
  client?.stop();
  client = null;
  if (server) {
    for (const c of server.clients) c.terminate();
    await new Promise<void>((r) => server!.close(() => r()));
    server = null;
  }
});

async function scriptedServer(onConnection: (ws: WebSocket, n: number, url: string) => void): Promise<string> {
  let n = 0;
  server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  server.on("connection", (ws, req) => onConnection(ws, n++, req.url ?? ""));
  await new Promise<void>((r) => server!.once("listening", () => r()));
  const addr = server.address();
  if (typeof addr === "string" || addr === null) throw new Error("no port");
  return `ws://127.0.0.1:${addr.port}`;
}

it("asks the token provider on every connect, and for a fresh token after 4440", async () => {
  const url = await scriptedServer((ws, n) => {
    if (n === 0) ws.close(CloseCode.TokenExpired, "access token expired");
    else ws.send('{"type":"hello"}');
  });
  const reasons: TokenReason[] = [];
  const tokens: string[] = [];
  client = new ReconnectingSocket({
    url: (token) => {
      tokens.push(token);
      return `${url}/?token=${token}`;
    },
    getToken: (reason) => {
      reasons.push(reason);
      return `t${reasons.length}`;
    },
    WebSocket: WS,
    backoff: { baseMs: 10, capMs: 50 },
  });
  const states: string[] = [];
  client.on("state", (s) => states.push(s));
  client.start();
  await until(() => client!.state === "open" && states.includes("reconnecting"), 5_000, "reconnected");
  expect(reasons).toEqual(["connect", "expired"]);
  expect(tokens).toEqual(["t1", "t2"]);
  // The server refuses by completing the upgrade and closing at once (the only way a browser learns why).
  expect(states).toEqual(["connecting", "open", "reconnecting", "open"]);

  // A later drop asks again (plain "connect": the provider decides whether to refresh).
  for (const c of server!.clients) c.terminate();
  await until(() => reasons.length === 3 && client!.state === "open", 5_000, "second reconnect");
  expect(reasons[2]).toBe("connect");
});

it("does not spin when every token is refused as expired: the second 4440 in a row backs off", async () => {
  let connections = 0;
  const url = await scriptedServer((ws) => {
    connections++;
    ws.close(CloseCode.TokenExpired, "access token expired");
  });
  client = new ReconnectingSocket({ url: () => url, getToken: () => "t", WebSocket: WS, backoff: { baseMs: 1_000, random: () => 0.999 } });
  client.start();
  await new Promise((r) => setTimeout(r, 400));
  // One immediate retry with a refreshed token, then the normal backoff (here ~1 s) applies.
  expect(connections).toBe(2);
});

for (const [code, name] of [
  [CloseCode.NotAMember, "not a member"],
  [CloseCode.VersionUnsupported, "version unsupported"],
] as const) {
  it(`stops on the terminal close code ${code} (${name}) and surfaces it`, async () => {
    let connections = 0;
    const url = await scriptedServer((ws) => {
      connections++;
      ws.close(code, name);
    });
    const errors: ConnectionError[] = [];
    client = new ReconnectingSocket({ url: () => url, getToken: () => "t", WebSocket: WS, backoff: { baseMs: 5, capMs: 10 } });
    client.on("error", (e) => errors.push(e));
    client.start();
    await until(() => client!.state === "closed" && errors.length > 0, 5_000, "closed");
    await new Promise((r) => setTimeout(r, 200));
    expect(connections).toBe(1);
    expect(errors).toEqual([{ code, reason: name, terminal: true }]);
  });
}

it("retries non-terminal closes (1011, 4429) with backoff", async () => {
  const codes = [1011, CloseCode.TooManyConnections];
  const url = await scriptedServer((ws, n) => {
    const code = codes[n];
    if (code !== undefined) ws.close(code, "try later");
  });
  client = new ReconnectingSocket({ url: () => url, getToken: () => "t", WebSocket: WS, backoff: { baseMs: 10, capMs: 40 } });
  client.start();
  await until(() => client!.state === "open" && server!.clients.size === 1, 5_000, "open after retries");
});

it("pings on a fixed interval with the exact auto-response text, and reconnects when no pong comes", async () => {
  const received: string[][] = [];
  const url = await scriptedServer((ws, n) => {
    received[n] = [];
    // The first server answers pings (healthy hibernated object); the second one is a dead link.
    ws.on("message", (data) => {
      received[n]!.push(data.toString());
      if (n === 0 && data.toString() === PING_FRAME) ws.send('{"type":"pong"}');
    });
  });
  client = new ReconnectingSocket({
    url: () => url,
    getToken: () => "t",
    WebSocket: WS,
    backoff: { baseMs: 10, capMs: 20 },
    heartbeat: { intervalMs: 150, timeoutMs: 150 },
  });
  client.start();
  // The client pings even while the server keeps talking: the server's presence sweep only counts pings.
  const chatter = setInterval(() => server!.clients.forEach((ws) => ws.send('{"type":"noise"}')), 30);
  await new Promise((r) => setTimeout(r, 700));
  clearInterval(chatter);
  // Healthy: pinged a few times, never reconnected.
  expect(received.length).toBe(1);
  expect(received[0]!.length).toBeGreaterThanOrEqual(2);
  expect(new Set(received[0])).toEqual(new Set([PING_FRAME]));

  // Now the link goes silent (no pongs): the client notices within interval + timeout and reconnects.
  for (const ws of server!.clients) ws.removeAllListeners("message");
  for (const ws of server!.clients) ws.on("message", () => {});
  await until(() => received.length >= 2, 3_000, "reconnect after missed pong");
});
