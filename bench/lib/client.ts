// Load-side helpers: REST setup calls, a socket that timestamps every frame on arrival, bounded concurrency.
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { ADMIN_SECRET } from "./workerd.ts";

export interface BenchUser {
  id: string;
  username: string;
  token: string;
}

const REQUEST_TIMEOUT_MS = 60_000;

export async function api<T = unknown>(
  base: string,
  method: string,
  path: string,
  init: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (init.token) headers.Authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    // A hung request fails the scenario instead of the whole run.
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  return { status: res.status, body: body as T };
}

export async function mustApi<T = unknown>(base: string, method: string, path: string, init: { token?: string; body?: unknown } = {}): Promise<T> {
  const r = await api<T>(base, method, path, init);
  if (r.status >= 300) throw new Error(`${method} ${path} -> ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  return r.body;
}

/** Run `fn` over `items` with at most `limit` in flight; results in input order. */
export async function pMap<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    // Stop starting new items once one has failed (the caller gets the first error).
    while (!failed) {
      const i = next++;
      if (i >= items.length) return;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Users minted through the admin API (no password hashing), so thousands are cheap. */
export async function createUsers(base: string, count: number, prefix: string): Promise<BenchUser[]> {
  const ids = Array.from({ length: count }, (_, i) => i);
  return pMap(ids, 16, async (i) => {
    const userId = `${prefix}_${i}`;
    const body = await mustApi<{ user: { id: string; username: string }; accessToken: string }>(base, "POST", "/v1/admin/tokens", {
      token: ADMIN_SECRET,
      body: { userId, username: `${prefix}.${i}`.toLowerCase() },
    });
    return { id: body.user.id, username: body.user.username, token: body.accessToken };
  });
}

export async function createGroup(base: string, owner: BenchUser, members: BenchUser[], title = "bench"): Promise<string> {
  const others = members.filter((m) => m.id !== owner.id).map((m) => m.id);
  const first = others.slice(0, 999);
  const created = await mustApi<{ conversation: { id: string } }>(base, "POST", "/v1/conversations", {
    token: owner.token,
    body: { type: "group", title, memberIds: first },
  });
  const id = created.conversation.id;
  for (let i = 999; i < others.length; i += 1000) {
    await mustApi(base, "POST", `/v1/conversations/${id}/members`, { token: owner.token, body: { userIds: others.slice(i, i + 1000) } });
  }
  return id;
}

/**
 * Wait until a new group is in its members' stored inboxes (creation fans out through the queue): checks 20 members
 * spread over the list and the last one, each until it holds the group, newest first, so at most ~21 requests a round.
 */
export async function waitForInboxes(base: string, members: BenchUser[], conversationId: string, timeoutMs: number): Promise<{ waitedMs: number; done: boolean }> {
  const t0 = performance.now();
  const step = Math.max(1, Math.floor(members.length / 20));
  let pending = members.filter((_, i) => i % step === 0 || i === members.length - 1);
  while (pending.length > 0 && performance.now() - t0 < timeoutMs) {
    const held = await Promise.all(
      pending.map(async (u) => {
        // A failed read is "not yet" (the runtime may be busy with the fan-out): the deadline decides.
        const r = await api<{ conversations: { conversationId: string }[] }>(base, "GET", "/v1/me/conversations?limit=5", { token: u.token });
        return r.status === 200 && r.body.conversations.some((c) => c.conversationId === conversationId);
      }),
    );
    pending = pending.filter((_, i) => !held[i]);
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 500));
  }
  return { waitedMs: performance.now() - t0, done: pending.length === 0 };
}

export async function createDirect(base: string, a: BenchUser, b: BenchUser): Promise<string> {
  const r = await mustApi<{ conversation: { id: string } }>(base, "POST", "/v1/conversations", { token: a.token, body: { type: "direct", userId: b.id } });
  return r.conversation.id;
}

/** The user socket (docs/protocol.md 12.1); the token travels in the subprotocol list, as the SDK sends it. */
export function userWsUrl(wsBase: string): string {
  return `${wsBase}/v1/me/ws?v=1`;
}

export function bearerProtocols(token: string): string[] {
  return ["edgechat.v1", `bearer.${token}`];
}

/**
 * A conversation socket as the SDK opens it while its user socket runs: `presence=0`, so connecting asks nothing
 * of the user's object (protocol 5.1; builds older than the parameter ignore it, and their sockets take a lease).
 */
export function conversationWsUrl(wsBase: string, conversationId: string, token: string, since?: number): string {
  return `${wsBase}/v1/conversations/${conversationId}/ws?v=1&presence=0&token=${token}${since === undefined ? "" : `&since=${since}`}`;
}

/** Frame type from the first bytes: every server frame (ours and the relays') starts with {"type":"... */
export function frameType(data: Buffer): string {
  const end = data.indexOf(34, 9); // closing quote of the type value
  return data.toString("latin1", 9, end);
}

export type FrameHandler = (data: Buffer, at: number) => void;

/** Byte-for-byte the protocol's PING_FRAME: the runtime answers it without waking the object. */
const PING_FRAME = '{"type":"ping"}';
/** Like the SDK: the server closes sockets that have not pinged within PRESENCE_TTL_MS (30 s). */
const PING_EVERY_MS = 15_000;
const live = new Set<BenchSocket>();
let pinger: ReturnType<typeof setInterval> | null = null;
let lastBeatAt = 0;
let maxBeatGapMs = 0;

function heartbeat(): void {
  const now = Date.now();
  // The pinger ticks every second; a longer gap means this process's event loop stalled (and pings
  // went out late by as much). Read with takeHeartbeatGap().
  if (lastBeatAt) maxBeatGapMs = Math.max(maxBeatGapMs, now - lastBeatAt);
  lastBeatAt = now;
  for (const s of live) {
    if (now - s.lastPingAt >= PING_EVERY_MS && s.ws.readyState === WebSocket.OPEN) {
      s.lastPingAt = now;
      s.ws.send(PING_FRAME);
    }
  }
}

/** Longest gap between two pinger ticks (expected 1 s) since the last call, in ms; then resets. */
export function takeHeartbeatGap(): number {
  const g = maxBeatGapMs;
  maxBeatGapMs = 0;
  return g;
}

/**
 * Closes the harness did not ask for (by close code: 4408 no heartbeat, 1006 lost, 1011, refusals...).
 * A socket closed through `close()` is never counted, whatever code comes back.
 */
const unexpectedCloses = new Map<number, number>();

export function unexpectedCloseTally(): Record<string, number> {
  return Object.fromEntries(unexpectedCloses);
}

/**
 * Connects the server reset before answering the upgrade (ECONNRESET, EPIPE, hang-up), each then retried by
 * `openSockets` as a client retries a failed connect. Under a saturated local runtime this happens to requests
 * the runtime accepted but did not read for 15 s (bench/README.md, "Scenario 4: connects reset under load").
 */
let connectResets = 0;

export function connectResetTally(): number {
  return connectResets;
}

/** A connection the server dropped (reset, closed mid-request), as opposed to an answer (an HTTP error, a close code). */
export function isDroppedConnection(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === "ECONNRESET" || code === "EPIPE" || /socket hang up/.test(String(err));
}

export type ReadyOn = "caught_up" | "open" | "hello";

/**
 * A client socket. `ready` resolves on the first `caught_up` frame (edgechat sends it when the
 * socket is live; the relays send one on connect), or on `hello` for user sockets (`readyOn: "hello"`),
 * or on open. Each frame is timestamped before anything else.
 */
export class BenchSocket {
  readonly ws: WebSocket;
  readonly ready: Promise<void>;
  readonly closed: Promise<number>;
  onFrame: FrameHandler | null = null;
  framesIn = 0;
  lastPingAt = Date.now();
  /** Set when the harness closes the socket itself. */
  closing = false;
  /** Set when the upgrade was answered (101). */
  opened = false;
  /** The transport error, if the socket failed. */
  error: Error | undefined;

  constructor(url: string, onFrame: FrameHandler | null = null, readyOn: ReadyOn = "caught_up", protocols?: string[]) {
    this.onFrame = onFrame;
    this.ws = new WebSocket(url, protocols ?? [], { perMessageDeflate: false });
    const readyFrame = readyOn === "hello" ? "hello" : "caught_up";
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    let isReady = false;
    this.ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    this.ready.catch(() => undefined);
    this.ws.on("message", (data: Buffer) => {
      const at = performance.now();
      this.framesIn++;
      if (!isReady && frameType(data) === readyFrame) {
        isReady = true;
        readyResolve();
      }
      this.onFrame?.(data, at);
    });
    this.ws.on("open", () => {
      this.opened = true;
      if (readyOn === "open") {
        isReady = true;
        readyResolve();
      }
    });
    this.ws.on("error", (e) => {
      this.error = e;
      readyReject(e);
    });
    live.add(this);
    if (!pinger) {
      pinger = setInterval(heartbeat, 1_000);
      pinger.unref();
    }
    this.closed = new Promise((res) =>
      this.ws.on("close", (code) => {
        live.delete(this);
        // A connect reset before the upgrade answered is not a socket the server closed: openSockets counts and retries it.
        if (!this.closing && !this.resetBeforeOpen) unexpectedCloses.set(code, (unexpectedCloses.get(code) ?? 0) + 1);
        if (!isReady) readyReject(new Error(`socket closed before ready: ${code}`));
        res(code);
      }),
    );
  }

  /** The server dropped the connection before answering the upgrade: the request may never have been read, so a retry is safe. */
  get resetBeforeOpen(): boolean {
    return !this.opened && this.error !== undefined && isDroppedConnection(this.error);
  }

  send(text: string): void {
    this.ws.send(text);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.closing = true;
    if (this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    } else this.ws.close(1000);
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 5_000))]);
    if ((this.ws.readyState as number) !== WebSocket.CLOSED) this.ws.terminate();
  }
}

/**
 * Open many sockets with bounded concurrency; each resolves when live. A connect the server reset before
 * answering the upgrade is retried (counted in `connectResetTally`), up to CONNECT_ATTEMPTS times, as the SDK
 * retries a failed connect; any other failure fails the call.
 */
export async function openSockets(
  urls: string[],
  concurrency: number,
  onFrame: (i: number) => FrameHandler | null = () => null,
  readyOn: ReadyOn = "caught_up",
  protocols?: (i: number) => string[] | undefined,
): Promise<BenchSocket[]> {
  const opened = new Set<BenchSocket>();
  try {
    return await pMap(urls, concurrency, async (url, i) => {
      for (let attempt = 1; ; attempt++) {
        const s = new BenchSocket(url, onFrame(i), readyOn, protocols?.(i));
        opened.add(s);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`socket ${i} of ${urls.length} not live after ${READY_TIMEOUT_MS / 1000} s (upgrade answered: ${s.opened ? "yes" : "no"}, frames: ${s.framesIn})`)),
            READY_TIMEOUT_MS,
          );
        });
        try {
          await Promise.race([s.ready, timeout]);
          return s;
        } catch (err) {
          if (!s.resetBeforeOpen || attempt >= CONNECT_ATTEMPTS) throw err;
          opened.delete(s);
          connectResets++;
          await new Promise((r) => setTimeout(r, 250 * attempt));
        } finally {
          clearTimeout(timer);
        }
      }
    });
  } catch (err) {
    // Do not leave half a room connected behind a failed scenario.
    await closeAll([...opened]);
    throw err;
  }
}

const READY_TIMEOUT_MS = 30_000;
const CONNECT_ATTEMPTS = 3;

export async function closeAll(sockets: BenchSocket[]): Promise<void> {
  await pMap(sockets, 500, (s) => s.close());
}

let tags = 0;
/**
 * A tag for clientMsgIds that is new on every call: a direct conversation is the same conversation every
 * time a scenario runs (e.g. again under --hog), and a clientMsgId it has seen is acked as a duplicate
 * and never delivered again.
 */
export function uniqueTag(): string {
  return `${Date.now().toString(36)}${(tags++).toString(36)}`;
}

/** Message bodies carry the send time (performance.now(), same process as the receivers), the sender and a counter. */
export function makeBody(sender: number, n: number, padTo: number): string {
  const head = `${performance.now().toFixed(3)}|${sender}|${n}|`;
  return head.length >= padTo ? head : head + "x".repeat(padTo - head.length);
}

/** Parse the body fields out of a `message` frame without JSON.parse of the whole frame. */
export function parseMessageFrame(data: Buffer): { sentAt: number; sender: number; n: number; seq: number } | null {
  const text = data.toString("utf8");
  const b = text.indexOf('"body":"');
  if (b < 0) return null;
  const start = b + 8;
  const p1 = text.indexOf("|", start);
  const p2 = text.indexOf("|", p1 + 1);
  const p3 = text.indexOf("|", p2 + 1);
  const s = text.indexOf('"seq":');
  const seq = s < 0 ? -1 : parseInt(text.slice(s + 6, s + 22), 10);
  return { sentAt: Number(text.slice(start, p1)), sender: Number(text.slice(p1 + 1, p2)), n: Number(text.slice(p2 + 1, p3)), seq };
}
