// Applying change entries (docs/protocol.md 15.6) without a server: a message read in any state, followed
// by any suffix of the entries that changed it (the backlog carries both), ends in the state the server
// has; applying an entry twice changes nothing; quotes follow the parent; replies are counted once.
import fc from "fast-check";
import { expect, it } from "vitest";
import { ChangeApplier, applyChange, quoteOf, type ChangeEntry } from "../src/changes";
import { nextFrame } from "../src/sending";
import type { ChatMessage, ReactionCount } from "../src/index";
import type { OutboxItem } from "../src/outbox";

const ME = "u_me";
const USERS = [ME, "u_b", "u_c"];
const EMOJI = ["👍", "🎉", "❤️"];

type Op = { t: "edit"; body: string } | { t: "react"; user: string; emoji: string; on: boolean } | { t: "delete"; by: string };

/** A tiny model of the server for one message at seq 1: its state after each entry, and the entries (as read at the end). */
function serve(ops: Op[]): { states: ChatMessage[]; entries: ChangeEntry[] } {
  let m: ChatMessage = { seq: 1, id: "m1", senderId: ME, clientMsgId: "c1", body: "original", createdAt: 1000 };
  const users = new Map<string, Set<string>>(); // emoji -> users, insertion order = first reacted
  const states: ChatMessage[] = [structuredClone(m)];
  const entries: ChangeEntry[] = [];
  let version = 1;
  for (const op of ops) {
    const seq = entries.length + 2;
    const base = { seq, id: `m${seq}`, clientMsgId: `c${seq}`, body: "(fallback)", createdAt: 1000 + seq };
    if (m.deleted) break;
    if (op.t === "edit") {
      version++;
      for (const e of entries) if (e.change.type === "edit") delete e.change.body; // superseded
      entries.push({ ...base, senderId: ME, change: { type: "edit", target: 1, version, body: op.body } });
      m = { ...m, body: op.body, edited: { at: base.createdAt, version } };
    } else if (op.t === "react") {
      const set = users.get(op.emoji) ?? new Set();
      if (set.has(op.user) === op.on) continue; // stores nothing
      if (op.on) set.add(op.user);
      else set.delete(op.user);
      if (set.size === 0) users.delete(op.emoji);
      else users.set(op.emoji, set);
      entries.push({ ...base, senderId: op.user, change: { type: "reaction", target: 1, emoji: op.emoji, on: op.on, count: set.size } });
      const reactions: ReactionCount[] = [...users].map(([emoji, s]) => ({ emoji, count: s.size, me: s.has(ME) }));
      m = { ...m, reactions: reactions.sort((a, b) => b.count - a.count) };
      if (reactions.length === 0) delete m.reactions;
    } else {
      for (const e of entries) if (e.change.type === "edit") delete e.change.body;
      entries.push({ ...base, senderId: op.by, change: { type: "delete", target: 1 } });
      m = { seq: 1, id: "m1", senderId: ME, clientMsgId: "c1", body: "", createdAt: 1000, deleted: { at: base.createdAt, by: op.by } };
    }
    states.push(structuredClone(m));
  }
  return { states, entries };
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 8 }).map((body) => ({ t: "edit" as const, body })) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant("react" as const), user: fc.constantFrom(...USERS), emoji: fc.constantFrom(...EMOJI), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constantFrom(...USERS).map((by) => ({ t: "delete" as const, by })) },
);

/** Reactions compare as a set: tie order (first reacted) is only known to the server. */
const norm = (m: ChatMessage) => ({ ...m, reactions: m.reactions ? [...m.reactions].sort((a, b) => b.count - a.count || a.emoji.localeCompare(b.emoji)) : undefined });

it("a message read in any state, then any later suffix of its entries, applied once or twice, ends in the server's state", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 25 }), fc.nat(), fc.nat(), (ops, a, b) => {
      const { states, entries } = serve(ops);
      const final = states.at(-1)!;
      // Read at state k; the backlog then carries entries from j on, j <= k (older entries too), up to the end.
      const k = a % states.length;
      const j = b % (k + 1);
      let m = structuredClone(states[k]!);
      for (const e of entries.slice(j)) m = applyChange(m, e, ME);
      expect(norm(m)).toEqual(norm(final));
      for (const e of entries) m = applyChange(m, e, ME);
      expect(norm(m)).toEqual(norm(final));
    }),
    { numRuns: 400 },
  );
});

it("an entry that changes nothing returns the same object (no `updated` event)", () => {
  const m: ChatMessage = { seq: 1, id: "m1", senderId: ME, clientMsgId: "c1", body: "v3", createdAt: 1, edited: { at: 5, version: 3 } };
  const base = { id: "x", clientMsgId: "x", body: "", createdAt: 9, senderId: ME };
  expect(applyChange(m, { ...base, seq: 2, change: { type: "edit", target: 1, version: 2 } }, ME)).toBe(m);
  expect(applyChange(m, { ...base, seq: 3, change: { type: "edit", target: 1, version: 3, body: "v3" } }, ME)).toBe(m);
  expect(applyChange(m, { ...base, seq: 4, change: { type: "reaction", target: 1, emoji: "👍", on: false, count: 0 } }, ME)).toBe(m);
  const dead: ChatMessage = { ...m, body: "", deleted: { at: 7, by: ME } };
  delete dead.edited;
  expect(applyChange(dead, { ...base, seq: 5, change: { type: "reaction", target: 1, emoji: "👍", on: true, count: 1 } }, ME)).toBe(dead);
  expect(applyChange(dead, { ...base, seq: 6, change: { type: "delete", target: 1 } }, ME)).toBe(dead);
});

it("replies follow their parent's edit and delete, and a parent counts each reply once", () => {
  const applier = new ChangeApplier(ME);
  const parent: ChatMessage = { seq: 1, id: "m1", senderId: "u_b", clientMsgId: "p", body: "hello\n  world", createdAt: 100, replies: { count: 1, lastAt: 200 } };
  const r1: ChatMessage = { seq: 2, id: "m2", senderId: ME, clientMsgId: "r1", body: "hi", createdAt: 200, replyTo: { seq: 1, senderId: "u_b", quote: "hello world" } };
  const list = [parent, r1];
  // r1 was counted in the parent as read (same lastAt): not again.
  expect(applier.countReply(list, r1)).toEqual([]);
  // Two replies of one batch (same millisecond), live: both count.
  const r2: ChatMessage = { ...r1, seq: 3, id: "m3", clientMsgId: "r2", createdAt: 300 };
  const r3: ChatMessage = { ...r1, seq: 4, id: "m4", clientMsgId: "r3", createdAt: 300 };
  list.push(r2);
  expect(applier.countReply(list, r2).map((m) => m.replies)).toEqual([{ count: 2, lastAt: 300 }]);
  list.push(r3);
  expect(applier.countReply(list, r3).map((m) => m.replies)).toEqual([{ count: 3, lastAt: 300 }]);
  expect(applier.countReply(list, r3)).toEqual([]);

  const edit: ChangeEntry = { seq: 5, id: "m5", senderId: "u_b", clientMsgId: "e", body: "* x", createdAt: 400, change: { type: "edit", target: 1, version: 2, body: "fixed\tbody" } };
  const updated = applier.apply(list, edit);
  expect(updated.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
  expect(list[0]!.body).toBe("fixed\tbody");
  expect(list.slice(1).map((m) => m.replyTo!.quote)).toEqual(["fixed body", "fixed body", "fixed body"]);
  expect(applier.apply(list, edit)).toEqual([]);

  const del: ChangeEntry = { ...edit, seq: 6, id: "m6", clientMsgId: "d", change: { type: "delete", target: 1 } };
  applier.apply(list, del);
  expect(list[0]).toEqual({ seq: 1, id: "m1", senderId: "u_b", clientMsgId: "p", body: "", createdAt: 100, deleted: { at: 400, by: "u_b" }, replies: { count: 3, lastAt: 300 } });
  expect(list[1]!.replyTo).toEqual({ seq: 1, senderId: "u_b", quote: "", deleted: true });
  expect(applier.apply(list, del)).toEqual([]);
  expect(quoteOf("x".repeat(200))).toBe(`${"x".repeat(139)}…`);
  expect(quoteOf("x".repeat(140))).toBe("x".repeat(140));
  expect(quoteOf(" ", [{ name: "photo.jpg" }, { name: "b.png" }])).toBe("📎 photo.jpg +1");
});

it("the outbox sends a change as a frame of its own, in the user's order", () => {
  let n = 0;
  const item = (extra: Partial<OutboxItem> = {}): OutboxItem => ({ clientMsgId: `c${++n}`, conversationId: "c", userId: ME, body: `b${n}`, createdAt: n, ...extra });
  const m1 = item();
  const m2 = item();
  const e = item({ change: { type: "edit", seq: 1 } });
  const m3 = item();
  const bad = item({ change: { type: "react", seq: 1, emoji: "no", on: true } });
  expect(nextFrame([m1, m2, e, m3]).chunk).toEqual([m1, m2]);
  expect(nextFrame([e, m3]).chunk).toEqual([e]);
  const r = nextFrame([bad, m3]);
  expect(r.invalid.map((x) => [x.item, x.error.code])).toEqual([[bad, "validation_failed"]]);
  expect(r.chunk).toEqual([m3]); // `bad` fails locally (it leaves the outbox), m3 goes on
  expect(nextFrame([e], false).invalid.map((x) => x.error.code)).toEqual(["unsupported"]);
});
