// Test helpers: REST calls through the real Worker, and WebSocket clients with a frame inbox.
import type { ConversationSummary } from "../src/objects/shared/updates";
import { exports } from "cloudflare:workers";
import { env, runInDurableObject } from "cloudflare:test";
import type { ChatMessage, ServerFrame } from "../src/protocol/frames";
import type { Conversation } from "../src/protocol/api";

const BASE = "http://chat.test";
let counter = 0;

export function uniq(prefix = "t"): string {
  counter++;
  return `${prefix}${Date.now().toString(36)}${counter}${Math.random().toString(36).slice(2, 6)}`;
}

function worker(): Fetcher {
  return (exports as unknown as { default: Fetcher }).default;
}

export interface ApiResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function api<T = any>(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<ApiResult<T>> {
  // A distinct client address per call unless a test sets one: the per-IP auth limiter is real here.
  const headers: Record<string, string> = { "CF-Connecting-IP": `10.${counter % 250}.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`, ...options.headers };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["Content-Type"] = "application/json";
  }
  const res = await worker().fetch(`${BASE}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // leave as text
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export interface TestUser {
  id: string;
  username: string;
  token: string;
}

/** A user minted through the admin API (no PBKDF2 cost). */
export async function mintUser(name = uniq("u")): Promise<TestUser> {
  const username = name.toLowerCase().slice(0, 32);
  const r = await api("POST", "/v1/admin/tokens", {
    headers: { Authorization: `Bearer ${env.ADMIN_SECRET}` },
    body: { userId: `ext_${username}`, username },
  });
  if (r.status !== 200) throw new Error(`mint failed: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.user.id, username, token: r.body.accessToken };
}

export async function createGroup(owner: TestUser, members: TestUser[], title = "group"): Promise<Conversation> {
  const r = await api("POST", "/v1/conversations", {
    token: owner.token,
    body: { type: "group", title, memberIds: members.map((m) => m.id) },
  });
  if (r.status !== 201) throw new Error(`createGroup failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.conversation;
}

/**
 * A group of `size` minted members besides its owner, created and then waited for until its first and last
 * members' inboxes hold it: the creation's queued fan-out is over, so none of it is in flight when the test ends.
 */
export async function createSettledGroup(size: number, title = "group"): Promise<{ owner: TestUser; members: TestUser[]; g: Conversation }> {
  const owner = await mintUser();
  const members = await Promise.all(Array.from({ length: size }, () => mintUser()));
  const g = await createGroup(owner, members, title);
  for (const u of [members[0]!, members[members.length - 1]!]) {
    for (let t = 0; t < 100; t++) {
      const page = await api("GET", "/v1/me/conversations", { token: u.token });
      if (page.body.conversations.some((c: { conversationId: string }) => c.conversationId === g.id)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { owner, members, g };
}

/** A conversation socket of `user`, past its `caught_up`. */
export async function liveSocket(conversationId: string, user: TestUser): Promise<TestSocket> {
  const s = await TestSocket.conversation(conversationId, user);
  await s.next("caught_up");
  return s;
}

export async function createDirect(a: TestUser, b: TestUser): Promise<ApiResult<{ conversation: Conversation }>> {
  return api("POST", "/v1/conversations", { token: a.token, body: { type: "direct", userId: b.id } });
}

export async function sendRest(user: TestUser, conversationId: string, clientMsgId: string, body = clientMsgId, attachments?: string[]) {
  return api("POST", `/v1/conversations/${conversationId}/messages`, { token: user.token, body: { clientMsgId, body, ...(attachments ? { attachments } : {}) } });
}

type Waiter = { pred: (f: ServerFrame) => boolean; resolve: (f: ServerFrame) => void };

/** A client socket that records every frame, with helpers to wait for frames and the close. */
export class TestSocket {
  readonly frames: ServerFrame[] = [];
  readonly raw: string[] = [];
  private waiters: Waiter[] = [];
  private cursor = 0;
  readonly closed: Promise<{ code: number; reason: string }>;

  private pinger: ReturnType<typeof setInterval> | null = null;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
    });
    ws.addEventListener("close", () => this.stopPinging());
    ws.addEventListener("message", (e) => {
      const text = typeof e.data === "string" ? e.data : "";
      this.raw.push(text);
      const frame = JSON.parse(text) as ServerFrame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => {
        if (w.pred(frame)) {
          w.resolve(frame);
          return false;
        }
        return true;
      });
    });
  }

  static async open(
    path: string,
    params: Record<string, string | number | undefined> = {},
    init: { headers?: Record<string, string>; heartbeat?: boolean } = {},
  ): Promise<TestSocket> {
    const url = new URL(`${BASE}${path}`);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v));
    const res = await worker().fetch(url.toString(), { headers: { Upgrade: "websocket", ...init.headers } });
    const ws = res.webSocket;
    if (!ws) throw new Error(`no websocket: ${res.status} ${await res.text()}`);
    const socket = new TestSocket(ws);
    ws.accept();
    // Like a real client: ping well inside the presence TTL (the runtime answers without waking the object).
    if (init.heartbeat === true) socket.pinger = setInterval(() => socket.ping(), 500);
    return socket;
  }

  ping(): void {
    try {
      this.ws.send('{"type":"ping"}');
    } catch {
      this.stopPinging();
    }
  }

  stopPinging(): void {
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = null;
  }

  static user(user: TestUser, init: { heartbeat?: boolean } = {}) {
    return TestSocket.open("/v1/me/ws", { v: 1, token: user.token }, init);
  }

  /** Frames of any shape (the user socket speaks its own union). */
  nextAny(pred: (f: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, any>> {
    return this.waitFor((f): f is ServerFrame => pred(f as unknown as Record<string, unknown>), timeoutMs) as Promise<Record<string, any>>;
  }

  static conversation(
    conversationId: string,
    user: TestUser,
    params: Record<string, string | number | undefined> = {},
    init: { heartbeat?: boolean } = {},
  ) {
    return TestSocket.open(`/v1/conversations/${conversationId}/ws`, { v: 1, token: user.token, ...params }, init);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame (after those already consumed by `next`) matching `pred`. */
  next<T extends ServerFrame["type"]>(type: T, pred: (f: Extract<ServerFrame, { type: T }>) => boolean = () => true, timeoutMs = 5000) {
    return this.waitFor((f): f is Extract<ServerFrame, { type: T }> => f.type === type && pred(f as Extract<ServerFrame, { type: T }>), timeoutMs);
  }

  waitFor<F extends ServerFrame>(pred: (f: ServerFrame) => f is F, timeoutMs = 5000): Promise<F> {
    for (let i = this.cursor; i < this.frames.length; i++) {
      const f = this.frames[i]!;
      if (pred(f)) {
        this.cursor = i + 1;
        return Promise.resolve(f);
      }
    }
    return new Promise<F>((resolve, reject) => {
      // Every frame's type (with its clientMsgId or seq), then the last five whole: a missing frame shows where it should be.
      const seen = () => this.frames.map((f: any) => [f.type, f.clientMsgId ?? f.seq ?? f.message?.seq].filter((x) => x !== undefined).join(":"));
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a frame; got ${seen().join(" ")}; the last five: ${JSON.stringify(this.frames.slice(-5))}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (f) => {
          clearTimeout(timer);
          this.cursor = this.frames.length;
          resolve(f as F);
        },
      });
    });
  }

  /** Every chat message this socket received (backlog and live), in arrival order. */
  messages(): ChatMessage[] {
    const out: ChatMessage[] = [];
    for (const f of this.frames) {
      if (f.type === "backlog") out.push(...f.messages);
      else if (f.type === "message") out.push(f.message);
    }
    return out;
  }

  async waitForMessages(count: number, timeoutMs = 10_000): Promise<ChatMessage[]> {
    const start = Date.now();
    while (this.messages().length < count) {
      if (Date.now() - start > timeoutMs) throw new Error(`expected ${count} messages, have ${this.messages().length}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.messages();
  }

  close(code = 1000): void {
    this.stopPinging();
    try {
      this.ws.close(code, "bye");
    } catch {
      // already closed
    }
  }
}

/**
 * Restart one Durable Object, as a crash or a redeploy would: its in-memory state is lost and its sockets
 * drop; storage stays. (ctx.abort() on that object only: abortAllDurableObjects() would also reset every
 * other test's objects, and with the pinned pool it can stall the run at teardown.)
 */
export async function restartObject<T extends Rpc.DurableObjectBranded | undefined>(stub: DurableObjectStub<T>): Promise<void> {
  await runInDurableObject(stub, (_o, state) => state.abort("test: restart")).catch(() => undefined);
}

/** Restart one conversation's Durable Object (restartObject). */
export async function restartConversation(conversationId: string): Promise<void> {
  await restartObject(env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId)));
}

/** Record every statement a Durable Object runs on its SQLite until the returned `stop()` is called. */
export async function recordSql<T extends Rpc.DurableObjectBranded | undefined>(stub: DurableObjectStub<T>): Promise<() => Promise<string[]>> {
  type Logged = SqlStorage & { __log?: string[]; __exec?: SqlStorage["exec"] };
  await runInDurableObject(stub, (_o, state) => {
    const sql = state.storage.sql as Logged;
    sql.__log = [];
    sql.__exec = sql.exec;
    sql.exec = ((query: string, ...bindings: unknown[]) => {
      sql.__log!.push(query.replace(/\s+/g, " ").trim());
      return sql.__exec!.call(sql, query, ...(bindings as SqlStorageValue[]));
    }) as SqlStorage["exec"];
  });
  return () =>
    runInDurableObject(stub, (_o, state) => {
      const sql = state.storage.sql as Logged;
      sql.exec = sql.__exec!;
      return sql.__log!;
    });
}

/** The D1 database holding a conversation's warm tier: the shard its object recorded when it was created (src/db/shards.ts). */
export async function archiveDb(conversationId: string): Promise<D1Database> {
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId));
  const shard = await runInDurableObject(stub, (_o, state) =>
    state.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'd1_shard'").toArray()[0]?.value ?? "DB",
  );
  return (env as unknown as Record<string, D1Database>)[shard]!;
}

/** A live event of a group conversation: message `seq` from `senderId` (for LiveFeed tests). */
export function liveSummary(conversationId: string, senderId: string, seq: number): ConversationSummary {
  return { conversationId, type: "group", title: "t", directMembers: null, receipts: [], lastSeq: seq, lastMessage: { seq, senderId, preview: `m${seq}`, createdAt: Date.now() } };
}
