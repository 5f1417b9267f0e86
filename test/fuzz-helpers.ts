// Shared pieces of the fuzz suites: hostile values (unicode edge cases, prototype-pollution keys,
// out-of-range numbers, huge strings) and the invariants every answer must satisfy.
import fc from "fast-check";
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import app from "../src/worker";
import { ERROR_STATUS } from "../src/protocol/errors";
import type { ChatMessage } from "../src/protocol/frames";
import { TestSocket, type TestUser } from "./helpers";

/**
 * A fixed seed keeps CI reproducible; fast-check prints the seed and path of any failure, and the
 * failing case itself is in the error message. Change SEED (or raise SCALE) locally to explore further.
 */
export const SEED = 20261122;
export const SCALE = 1;

export const DOCUMENTED_CODES: ReadonlySet<string> = new Set(Object.keys(ERROR_STATUS));

export const POLLUTION_KEYS = ["__proto__", "constructor", "prototype", "__defineGetter__", "hasOwnProperty", "toString", "valueOf"] as const;

/** Strings that break naive code: lone and swapped surrogates, NUL, BOM, RTL marks, combining runs. */
export const NASTY_STRINGS = [
  "",
  " ",
  "\u0000",
  "\uD800",
  "\uDFFF",
  "a\uD800b",
  "\uDC00\uD800",
  "\uD83D",
  "😀",
  "\uFEFF",
  "\u202E",
  "e\u0301\u0301\u0301\u0301",
  "\n\r\t",
  "null",
  "undefined",
  "NaN",
  "-1",
  "1e309",
  "__proto__",
  "constructor",
  "%00",
  "../../etc/passwd",
  "<script>",
  "' OR 1=1 --",
  "${jndi:x}",
];

export const nastyString = (): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
    { weight: 2, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
    { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...NASTY_STRINGS), fc.string({ maxLength: 10 })).map(([a, b]) => a + b) },
  );

/** Long strings around the interesting limits: 8 KiB body, 64 KiB frame, 128 KiB request body. */
export const hugeString = (): fc.Arbitrary<string> =>
  fc
    .tuple(fc.constantFrom(256, 8191, 8192, 8193, 20_000, 65_600, 140_000), fc.constantFrom("x", "é", "😀", "\uD800"))
    .map(([n, ch]) => ch.repeat(Math.ceil(n / ch.length)));

export const nastyNumber = (): fc.Arbitrary<number> =>
  fc.oneof(
    fc.constantFrom(0, -0, -1, 1, 1.5, 2 ** 31, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, Number.MIN_VALUE, 1e308, -1e308),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );

/** Any JSON value, with hostile leaves mixed in. */
export const nastyValue = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    nastyString(),
    nastyNumber(),
    fc.boolean(),
    fc.constant(null),
    fc.jsonValue({ maxDepth: 3 }),
    fc.array(nastyString(), { maxLength: 4 }),
  );

/** An object whose own keys include prototype-pollution names (built as own properties, as JSON.parse would). */
export const pollutedObject = (): fc.Arbitrary<Record<string, unknown>> =>
  fc
    .array(fc.tuple(fc.oneof(fc.constantFrom(...POLLUTION_KEYS), fc.string({ maxLength: 8 })), fc.oneof(nastyValue(), fc.constant({ polluted: "yes", isAdmin: true }))), {
      maxLength: 4,
    })
    .map((entries) => Object.fromEntries(entries));

/** Merge extra own properties into a frame/body object, keeping the frame's own fields unless `override`. */
export function withExtras(base: Record<string, unknown>, extras: Record<string, unknown>, override = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(override ? { ...base, ...extras } : { ...extras, ...base })) {
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Prototype pollution would show up as new properties on every plain object in this isolate. */
export function assertPrototypesClean(): void {
  const probe = {} as Record<string, unknown>;
  for (const k of ["polluted", "isAdmin", "clientMsgId", "body", "type", "role", "userId"]) {
    if (k in probe) throw new Error(`Object.prototype was polluted with "${k}"`);
  }
  if (Object.getOwnPropertyNames(Object.prototype).some((k) => ["polluted", "isAdmin"].includes(k))) throw new Error("Object.prototype polluted");
}

export interface RawResponse {
  status: number;
  text: string;
  json: unknown;
}

/**
 * A request through the Worker's own fetch handler (the Hono app, with the real bindings) with an
 * arbitrary body (string, raw bytes such as invalid UTF-8, or a stream).
 *
 * Why not `exports.default.fetch` / `SELF.fetch`: in @cloudflare/vitest-pool-workers 0.15.1 each
 * request through the self binding costs more than the one before it, within a test file (10 x
 * GET /healthz: 5 ms at first, ~90 ms after 200 requests), so thousands of fuzz cases would take
 * minutes. Calling the handler directly stays flat and runs the same code.
 */
export async function rawFetch(method: string, path: string, init: { token?: string; body?: BodyInit; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  const headers: Record<string, string> = { "Content-Type": "application/json", ...init.headers };
  if (init.token) headers.Authorization = `Bearer ${init.token}`;
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`http://chat.test${path}`, { method, headers, body: init.body }), env, ctx);
  await waitOnExecutionContext(ctx);
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

/** Every answer: below 500, and an error is `{ error: { code, message } }` with a documented code and its status. */
export function assertWellFormedAnswer(r: RawResponse, what: string): void {
  if (r.status >= 500) throw new Error(`${what}: ${r.status} ${r.text.slice(0, 300)}`);
  if (r.status < 400) return;
  const err = (r.json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (!err || typeof err.code !== "string" || typeof err.message !== "string") throw new Error(`${what}: error without {error:{code,message}}: ${r.text.slice(0, 300)}`);
  if (!DOCUMENTED_CODES.has(err.code)) throw new Error(`${what}: undocumented error code ${err.code}`);
  const expected = ERROR_STATUS[err.code as keyof typeof ERROR_STATUS];
  if (expected !== r.status) throw new Error(`${what}: code ${err.code} came with status ${r.status}, documented as ${expected}`);
}

/**
 * fast-check parameters: fixed seed, no shrinking (the cases run against shared live state, so a
 * shrunk case would not replay the same server state), and a short failure report: counterexamples
 * hold 140 KB strings, which would bury the message.
 */
export function fuzzParams<T>(numRuns: number): fc.Parameters<T> {
  return {
    seed: SEED,
    numRuns,
    endOnFailure: true,
    reporter(out) {
      if (!out.failed) return;
      const cause = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
      throw new Error(`property failed (seed ${out.seed}, path "${out.counterexamplePath}", run ${out.numRuns}): ${cause.slice(0, 3000)}`);
    },
  };
}

export function describeCase(x: unknown): string {
  const s = typeof x === "string" ? x : String(JSON.stringify(x));
  return s.length > 200 ? `${s.slice(0, 200)}... (${s.length} chars)` : s;
}

// ---------------------------------------------------------------- a resuming client (fault-injection tests)

/**
 * What a correct client does, reduced to its core: remember the last seq seen, reconnect with
 * `since` after any drop, and resend every unacked message with the same clientMsgId. Records every
 * message received (across sockets) and every ack, so tests can check exactly-once and order.
 */
export class ResumingClient {
  socket: TestSocket | null = null;
  readonly received: ChatMessage[] = [];
  readonly acks = new Map<string, { seq: number; id: string; duplicate: boolean }[]>();
  readonly pending = new Map<string, string>();
  readonly closes: number[] = [];
  epoch: string | null = null;
  resets = 0;
  private cursor = 0;

  constructor(
    readonly conversationId: string,
    readonly user: TestUser,
  ) {}

  get lastSeen(): number {
    return this.received.reduce((m, x) => Math.max(m, x.seq), 0);
  }

  /** Open a socket resuming after lastSeen; resolves at caught_up, or with false if it was closed first. */
  async connect(): Promise<boolean> {
    this.collect();
    const s = await TestSocket.conversation(this.conversationId, this.user, { since: this.lastSeen, epoch: this.epoch ?? undefined });
    this.socket = s;
    this.cursor = 0;
    void s.closed.then((c) => this.closes.push(c.code));
    const first = await Promise.race([s.next("caught_up", () => true, 10_000).then(() => true), s.closed.then(() => false)]);
    this.collect();
    if (!first) return false;
    // Resend everything unacked: the server must answer each with one ack and store it once.
    if (this.pending.size > 0) this.transmit([...this.pending]);
    return true;
  }

  /** Process frames that arrived since the last call. */
  collect(): void {
    const s = this.socket;
    if (!s) return;
    for (; this.cursor < s.frames.length; this.cursor++) {
      const f = s.frames[this.cursor]!;
      if (f.type === "welcome") {
        if (f.reset) this.resets++;
        this.epoch = f.epoch;
      } else if (f.type === "backlog") this.received.push(...f.messages);
      else if (f.type === "message") this.received.push(f.message);
      else if (f.type === "ack") {
        const list = this.acks.get(f.clientMsgId) ?? [];
        list.push({ seq: f.seq, id: f.id, duplicate: f.duplicate });
        this.acks.set(f.clientMsgId, list);
        this.pending.delete(f.clientMsgId);
      }
    }
  }

  /**
   * The connection dies with frames still unread (in the kernel's buffers, say): they are never
   * processed. Acks among them are lost; messages among them come again in the next backlog.
   */
  loseUnreadFrames(): number {
    const lost = (this.socket?.frames.length ?? 0) - this.cursor;
    this.cursor = this.socket?.frames.length ?? 0;
    return lost;
  }

  send(messages: [clientMsgId: string, body: string][]): void {
    for (const [id, body] of messages) this.pending.set(id, body);
    this.transmit(messages);
  }

  private transmit(messages: [string, string][]): void {
    try {
      for (let i = 0; i < messages.length; i += 50) {
        this.socket?.send({ type: "send_batch", messages: messages.slice(i, i + 50).map(([clientMsgId, body]) => ({ clientMsgId, body })) });
      }
    } catch {
      // The socket is already gone: the messages stay pending and go again after the reconnect.
    }
  }

  /** Is the current socket closed (by the server, a restart, or us)? */
  async isClosed(): Promise<boolean> {
    if (!this.socket) return true;
    return Promise.race([this.socket.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 0))]);
  }

  /** Keep going until nothing is pending and the stream is seen up to `lastSeq`, reconnecting as needed. */
  async settle(lastSeq: () => Promise<number>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.collect();
      if (await this.isClosed()) await this.connect();
      this.collect();
      if (this.pending.size === 0 && this.lastSeen >= (await lastSeq())) return;
      if (Date.now() > deadline) throw new Error(`client ${this.user.id} did not settle: ${this.pending.size} pending, seen ${this.lastSeen}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    if (!this.socket) return;
    this.socket.close();
    await this.socket.closed;
  }
}
