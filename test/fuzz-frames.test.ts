// Property-based fuzzing of the conversation socket: thousands of generated frames of every type
// (and of no type at all) against one open socket. For every frame:
//   - only documented error codes come back, never internal_error, and the socket stays open;
//   - exactly the messages a spec-written oracle (below, independent of src/) calls valid are acked;
//   - a rejected frame changes nothing: lastSeq and the stored messages equal what the acks say.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestSocket, api, createGroup, mintUser, type TestUser } from "./helpers";
import { DOCUMENTED_CODES, POLLUTION_KEYS, SCALE, assertPrototypesClean, fuzzParams, describeCase, hugeString, nastyNumber, nastyString, nastyValue, pollutedObject, withExtras } from "./fuzz-helpers";
import type { ServerFrame } from "../src/protocol/frames";

const FRAME_TYPES = ["send", "send_batch", "ping", "typing", "receipt", "edit", "delete", "react"] as const;
/** Sent after every case: the object answers it, in order, with an error naming this clientMsgId. */
const marker = (i: number) => JSON.stringify({ type: "zz_marker", clientMsgId: `zz-marker-${i}` });
const isMarker = (f: ServerFrame) => f.type === "error" && f.clientMsgId?.startsWith("zz-marker-") === true;
const CASES_PER_RUN = 60;
const RUNS = 100 * SCALE; // 6,000 frames

// ---------------------------------------------------------------- the oracle (written from docs/protocol, not from src/)

const CLIENT_MSG_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const MAX_FRAME_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 8192; // wrangler.toml MAX_BODY_BYTES
const utf8 = (s: string) => new TextEncoder().encode(s).length;

/** What travels: a text frame is UTF-8, so lone surrogates in raw text become U+FFFD on the wire. */
const wellFormed = (s: string) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");

interface Prediction {
  /** clientMsgIds that must be acked, in order (a repeat within a batch is acked again, as a duplicate). */
  acks: string[];
  /** Error codes that must come back, in order. */
  errors: string[];
  /** 1 for a ping (answered by the object, or by the runtime for the exact auto-response bytes). */
  pongs: number;
}

/** Receipt cursors (src/protocol/user.ts contract): absent, or an integer 0..2^53-1. */
const isCursor = (x: unknown) => x === undefined || (typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= Number.MAX_SAFE_INTEGER);

function isMessageItem(x: unknown): x is { clientMsgId: string; body: string } {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false;
  const { clientMsgId, body } = x as Record<string, unknown>;
  return typeof clientMsgId === "string" && CLIENT_MSG_ID.test(clientMsgId) && typeof body === "string" && body.length >= 1 && body.length <= 256 * 1024 && !LONE_SURROGATE.test(body);
}

/** `stored`: clientMsgIds this sender already has in the conversation (a resend is acked whatever its body). */
export function predict(raw: string, stored: ReadonlySet<string> = new Set()): Prediction {
  const none = (code: string): Prediction => ({ acks: [], errors: [code], pongs: 0 });
  const silent = (): Prediction => ({ acks: [], errors: [], pongs: 0 });
  const text = wellFormed(raw);
  if (utf8(text) > MAX_FRAME_BYTES) return none("frame_too_large");
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return none("invalid_json");
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) return none("validation_failed");
  const frame = data as Record<string, unknown>;
  if (typeof frame.type !== "string") return none("validation_failed");
  if (!(FRAME_TYPES as readonly string[]).includes(frame.type)) return none("unknown_frame_type");
  const items =
    frame.type === "send"
      ? [frame]
      : frame.type === "send_batch"
        ? Array.isArray(frame.messages) && frame.messages.length >= 1 && frame.messages.length <= 50
          ? (frame.messages as unknown[])
          : null
        : undefined;
  if (items !== undefined) return predictSends(items, stored);
  if (frame.type === "ping") return { acks: [], errors: [], pongs: 1 };
  if (frame.type === "typing") return frame.active === undefined || typeof frame.active === "boolean" ? silent() : none("validation_failed");
  if (frame.type === "receipt") return isCursor(frame.delivered) && isCursor(frame.read) ? silent() : none("validation_failed");
  if (frame.type === "edit" || frame.type === "delete" || frame.type === "react") return predictChange(frame, stored);
  return none("validation_failed"); // unreachable: every known type is handled above
}

/** Emoji the generator uses, and what protocol 15.3 says of them: one emoji (one grapheme of at most 32 bytes) or not. */
const GOOD_EMOJI = ["👍", "❤️", "🇫🇷", "1️⃣", "👩‍👩‍👧‍👦", "🧑🏽‍💻"];
const BAD_EMOJI = ["", "a", "👍👍", "👍 ", ":+1:", "\u200b👍", "\u0000", "x".repeat(40)];

/**
 * Changes (protocol 15) name seqs far above anything this test stores, so a well-formed one is answered
 * message_not_found, unless its clientMsgId is already stored: the original ack, checked first (7.4).
 */
function predictChange(frame: Record<string, unknown>, stored: ReadonlySet<string>): Prediction {
  const { clientMsgId, seq } = frame;
  let ok = typeof clientMsgId === "string" && CLIENT_MSG_ID.test(clientMsgId) && typeof seq === "number" && Number.isInteger(seq) && seq >= 1 && seq <= Number.MAX_SAFE_INTEGER;
  if (frame.type === "edit") ok &&= typeof frame.body === "string" && frame.body.length <= 256 * 1024 && !LONE_SURROGATE.test(frame.body);
  if (frame.type === "react") ok &&= typeof frame.on === "boolean" && typeof frame.emoji === "string" && GOOD_EMOJI.includes(frame.emoji);
  if (!ok) return { acks: [], errors: ["validation_failed"], pongs: 0 };
  if (stored.has(clientMsgId as string)) return { acks: [clientMsgId as string], errors: [], pongs: 0 };
  return { acks: [], errors: ["message_not_found"], pongs: 0 };
}

function predictSends(items: unknown[] | null, stored: ReadonlySet<string>): Prediction {
  if (items === null || !items.every(isMessageItem)) return { acks: [], errors: ["validation_failed"], pongs: 0 };
  const p: Prediction = { acks: [], errors: [], pongs: 0 };
  const known = new Set(stored);
  for (const item of items as { clientMsgId: string; body: string }[]) {
    // A resend of a stored clientMsgId is acked with the original, before any size check.
    if (known.has(item.clientMsgId)) p.acks.push(item.clientMsgId);
    else if (utf8(item.body) > MAX_BODY_BYTES) p.errors.push("body_too_large");
    else {
      p.acks.push(item.clientMsgId);
      known.add(item.clientMsgId);
    }
  }
  return p;
}

// ---------------------------------------------------------------- generators

const clientMsgId = () => fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,12}$/) }, { weight: 1, arbitrary: nastyString() }, { weight: 1, arbitrary: nastyValue() });
const body = () =>
  fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 60 }) },
    { weight: 2, arbitrary: nastyString() },
    { weight: 1, arbitrary: hugeString() },
    { weight: 1, arbitrary: nastyValue() },
  );
const item = () => fc.oneof({ weight: 5, arbitrary: fc.record({ clientMsgId: clientMsgId(), body: body() }) }, { weight: 1, arbitrary: nastyValue() }, { weight: 1, arbitrary: pollutedObject() });

/** A seq no message of this test reaches (so a change to it is message_not_found), or not a seq at all. */
const farSeq = () => fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1_000_000_000, max: Number.MAX_SAFE_INTEGER }) }, { weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, 2 ** 53, "7") }, { weight: 1, arbitrary: nastyValue() });

/** Frames of each known type, valid or slightly wrong; extra and pollution keys mixed in. */
const structured = (): fc.Arbitrary<string> =>
  fc
    .tuple(
      fc.oneof(
        fc.record({ type: fc.constant("send"), clientMsgId: clientMsgId(), body: body() }),
        fc.record({ type: fc.constant("send_batch"), messages: fc.oneof(fc.array(item(), { minLength: 0, maxLength: 55 }), nastyValue()) }),
        fc.record({ type: fc.constant("ping") }),
        fc.record({ type: fc.constant("typing"), active: fc.oneof(fc.boolean(), nastyValue()) }, { requiredKeys: ["type"] }),
        fc.record({ type: fc.constant("receipt"), delivered: nastyNumber(), read: fc.oneof(nastyNumber(), nastyValue()) }, { requiredKeys: ["type"] }),
        fc.record({ type: fc.constant("edit"), clientMsgId: clientMsgId(), seq: farSeq(), body: body() }, { requiredKeys: ["type"] }),
        fc.record({ type: fc.constant("delete"), clientMsgId: clientMsgId(), seq: farSeq() }, { requiredKeys: ["type"] }),
        fc.record(
          { type: fc.constant("react"), clientMsgId: clientMsgId(), seq: farSeq(), emoji: fc.constantFrom(...GOOD_EMOJI, ...BAD_EMOJI), on: fc.oneof(fc.boolean(), nastyValue()) },
          { requiredKeys: ["type"] },
        ),
      ),
      fc.option(pollutedObject(), { nil: undefined, freq: 3 }),
      fc.boolean(),
    )
    .map(([frame, extras, override]) => JSON.stringify(extras ? withExtras(frame, extras, override) : frame));

/** Anything at all: random text, random JSON, wrong types for `type`, truncated frames, huge frames. */
const chaos = (): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ unit: "binary", maxLength: 80 }),
    fc.json({ maxDepth: 3 }),
    fc.record({ type: nastyValue() }).map((f) => JSON.stringify(f)),
    fc.record({ type: fc.oneof(fc.constantFrom(...FRAME_TYPES, ...POLLUTION_KEYS, "SEND", "send ", "pong", "ack", "welcome"), nastyString()) }).map((f) => JSON.stringify(f)),
    structured().chain((s) => fc.nat({ max: Math.max(0, s.length - 1) }).map((n) => s.slice(0, n))),
    hugeString().map((s) => JSON.stringify({ type: "send", clientMsgId: "huge", body: s })),
    fc.constantFrom('{"type":"send","clientMsgId":"p1","body":"x","__proto__":{"clientMsgId":"evil"}}', '{"__proto__":{"type":"send"}}', '{"constructor":{"prototype":{"polluted":"yes"}},"type":"ping"}', "null", "[]", '"ping"', "1e999", '{"type":"send","clientMsgId":"d","clientMsgId":"e","body":"dupe keys"}'),
  );

const frameCase = () => fc.oneof({ weight: 3, arbitrary: structured() }, { weight: 2, arbitrary: chaos() });

// ---------------------------------------------------------------- the property

let owner: TestUser;
let conversationId: string;
let socket: TestSocket;
let closedEarly: { code: number; reason: string } | null = null;
/** What the acks say the conversation now holds: clientMsgId -> body of the first accepted send. */
const stored = new Map<string, string>();
let freshAcks = 0;
let casesRun = 0;

beforeAll(async () => {
  owner = await mintUser();
  const member = await mintUser();
  conversationId = (await createGroup(owner, [member])).id;
  socket = await TestSocket.conversation(conversationId, owner, { since: 0 });
  await socket.next("caught_up");
  void socket.closed.then((c) => (closedEarly = c));
});

afterAll(() => socket?.close());

/**
 * Send one case, then a marker frame the object answers with an error naming the marker. The case's
 * replies are everything that arrives until both the marker's error and as many acks/errors/pongs as
 * the oracle predicts have come: no assumption about the order of replies from different frames
 * (frames whose handling writes are held by the output gate; others are not). A reply the oracle did
 * not predict still shows up, in the next case's window, and fails it.
 */
async function roundTrip(raw: string, i: number, p: Prediction): Promise<ServerFrame[]> {
  const start = socket.frames.length;
  const wanted = p.acks.length + p.errors.length + p.pongs;
  socket.send(raw);
  socket.send(marker(i));
  const counted = (f: ServerFrame) => f.type === "ack" || f.type === "pong" || (f.type === "error" && !isMarker(f));
  const deadline = Date.now() + 5_000;
  for (;;) {
    const got = socket.frames.slice(start);
    if (got.some(isMarker) && got.filter(counted).length >= wanted) return got.filter((f) => !isMarker(f) && f.type !== "receipts" && f.type !== "typing");
    if (closedEarly) throw new Error(`socket closed by the server: ${JSON.stringify(closedEarly)}`);
    if (Date.now() > deadline) throw new Error(`timed out: expected ${wanted} replies and the marker, got ${describeCase(got)}`);
    await new Promise((r) => setTimeout(r, 0));
  }
}

function checkCase(raw: string, replies: ServerFrame[], p: Prediction): void {
  const acks = replies.filter((f): f is Extract<ServerFrame, { type: "ack" }> => f.type === "ack");
  const errors = replies.filter((f): f is Extract<ServerFrame, { type: "error" }> => f.type === "error");
  for (const f of replies) {
    if (!["ack", "error", "message", "pong"].includes(f.type)) throw new Error(`unexpected ${f.type} frame`);
  }
  for (const e of errors) {
    if (!DOCUMENTED_CODES.has(e.code)) throw new Error(`undocumented error code ${e.code}`);
    if (e.code === "internal_error" || e.code === "unavailable") throw new Error(`server failure: ${e.code} ${e.message}`);
    if (typeof e.message !== "string" || e.message.length === 0) throw new Error("error without a message");
  }
  expect(acks.map((a) => a.clientMsgId)).toEqual(p.acks);
  expect(errors.map((e) => e.code)).toEqual(p.errors);
  expect(replies.filter((f) => f.type === "pong").length).toBe(p.pongs);
  for (const a of acks) {
    if (a.duplicate) {
      if (!stored.has(a.clientMsgId)) throw new Error(`duplicate ack for ${a.clientMsgId}, which was never stored`);
    } else {
      if (stored.has(a.clientMsgId)) throw new Error(`second fresh ack for ${a.clientMsgId}`);
      const parsed = JSON.parse(raw) as { body?: string; messages?: { clientMsgId: string; body: string }[] };
      const sent = parsed.messages ? parsed.messages.find((m) => m.clientMsgId === a.clientMsgId && utf8(m.body) <= MAX_BODY_BYTES)!.body : parsed.body!;
      stored.set(a.clientMsgId, sent);
      freshAcks++;
      if (a.seq !== freshAcks) throw new Error(`fresh ack with seq ${a.seq}, expected ${freshAcks}: a rejected frame moved lastSeq`);
    }
  }
}

describe("conversation socket fuzzing", () => {
  it(`${RUNS * CASES_PER_RUN} generated frames: documented errors only, socket stays open, no state change from rejected frames`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frameCase(), { minLength: CASES_PER_RUN, maxLength: CASES_PER_RUN }), async (cases) => {
        for (const raw of cases) {
          const p = predict(raw, new Set(stored.keys()));
          const replies = await roundTrip(raw, casesRun, p);
          try {
            checkCase(raw, replies, p);
          } catch (err) {
            throw new Error(`frame ${describeCase(raw)} got ${describeCase(replies)}: ${(err as Error).message}`);
          }
          casesRun++;
        }
        assertPrototypesClean();
      }),
      fuzzParams(RUNS),
    );
    expect(casesRun).toBeGreaterThanOrEqual(RUNS * CASES_PER_RUN);
    expect(closedEarly).toBeNull();

    // The server holds exactly what the acks said, nothing from any rejected frame.
    const history: { clientMsgId: string; body: string; seq: number }[] = [];
    for (let after = 0; ; ) {
      const page = await api("GET", `/v1/conversations/${conversationId}/messages?after=${after}&limit=200`, { token: owner.token });
      expect(page.status).toBe(200);
      history.push(...page.body.messages);
      if (page.body.nextAfter === null) break;
      after = page.body.nextAfter;
    }
    expect(history.length).toBe(freshAcks);
    expect(new Map(history.map((m) => [m.clientMsgId, m.body]))).toEqual(stored);
    // The generators did reach the accepting path, and the rejecting ones.
    expect(freshAcks).toBeGreaterThan(100);
  }, 120_000);

  it("the oracle agrees with the spec on hand-picked frames (so that it can catch the server out)", () => {
    expect(predict('{"type":"send","clientMsgId":"a","body":"b"}')).toEqual({ acks: ["a"], errors: [], pongs: 0 });
    expect(predict('{"type":"ping","extra":1}').pongs).toBe(1);
    expect(predict('{"type":"send","clientMsgId":"a b","body":"b"}').errors).toEqual(["validation_failed"]);
    expect(predict(JSON.stringify({ type: "send", clientMsgId: "a", body: "\uD800" })).errors).toEqual(["validation_failed"]);
    expect(predict(JSON.stringify({ type: "send", clientMsgId: "a", body: "é".repeat(4097) })).errors).toEqual(["body_too_large"]);
    expect(predict(JSON.stringify({ type: "send", clientMsgId: "a", body: "é".repeat(4097) }), new Set(["a"])).acks).toEqual(["a"]);
    expect(predict("x".repeat(70_000)).errors).toEqual(["frame_too_large"]);
    expect(predict("{").errors).toEqual(["invalid_json"]);
    expect(predict('{"type":"nope"}').errors).toEqual(["unknown_frame_type"]);
    expect(predict('{"type":"send_batch","messages":[]}').errors).toEqual(["validation_failed"]);
  });
});
