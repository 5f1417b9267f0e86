// Helpers for tests of the three history tiers: shrink the windows of one conversation, and read what each tier
// stores (the object's SQLite, its D1 shard, its R2 segments) directly.
import { env, runInDurableObject } from "cloudflare:test";
import type { ConversationObject } from "../src/objects/conversation";
import { api, archiveDb, type TestUser } from "./helpers";

export const stubOf = (id: string) => env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(id));

/** Set tier limits of one live object (the `limits` seam); tests keep HOT_TAIL_MESSAGES = 20 from vitest.config.ts. */
export async function tiers(conversationId: string, limits: { warmMessages?: number; segmentMessages?: number; warmDays?: number; hotTailMessages?: number; retentionDays?: number }): Promise<void> {
  await runInDurableObject(stubOf(conversationId), (o: ConversationObject) => void Object.assign(o.limits, limits));
}

/** What each tier holds: seq ranges of the hot tail, D1 rows and R2 segments (from the index and from R2 itself). */
export async function where(conversationId: string): Promise<{ hot: number[]; d1: number[]; segments: { first: number; last: number }[]; r2Keys: string[] }> {
  const hot = await runInDurableObject(stubOf(conversationId), (_o, state) =>
    state.storage.sql.exec<{ seq: number }>("SELECT seq FROM messages ORDER BY seq").toArray().map((r) => r.seq),
  );
  const segments = await runInDurableObject(stubOf(conversationId), (_o, state) =>
    state.storage.sql.exec<{ first: number; last: number }>("SELECT first_seq AS first, last_seq AS last FROM segments ORDER BY first_seq").toArray(),
  );
  const d1 = (await (await archiveDb(conversationId)).prepare("SELECT seq FROM messages WHERE conversation_id = ? ORDER BY seq").bind(conversationId).all<{ seq: number }>()).results.map((r) => r.seq);
  const r2Keys = (await env.HISTORY.list({ prefix: `h/${conversationId}/` })).objects.map((o) => o.key).sort();
  return { hot, d1, segments: segments.map((s) => ({ ...s })), r2Keys };
}

/** Every byte the conversation's segments hold in R2, decompressed (to check a deleted body is gone). */
export async function segmentText(conversationId: string): Promise<string> {
  let text = "";
  for (const o of (await env.HISTORY.list({ prefix: `h/${conversationId}/` })).objects) {
    const body = (await env.HISTORY.get(o.key))!.body;
    text += await new Response(body.pipeThrough(new DecompressionStream("gzip"))).text();
  }
  return text;
}

/** The seqs of every history page, walking backwards then forwards `limit` at a time; both walks must agree. */
export async function walkHistory(user: TestUser, conversationId: string, limit: number): Promise<{ backwards: number[]; forwards: number[]; pages: any[] }> {
  const backwards: number[] = [];
  const pages: any[] = [];
  let before: number | null = null;
  do {
    const page: any = (await api("GET", `/v1/conversations/${conversationId}/messages?${before === null ? "" : `before=${before}&`}limit=${limit}`, { token: user.token })).body;
    pages.push(page);
    backwards.unshift(...page.messages.map((m: { seq: number }) => m.seq));
    before = page.nextBefore;
  } while (before !== null);
  const forwards: number[] = [];
  let after: number | null = 0;
  while (after !== null) {
    const page: any = (await api("GET", `/v1/conversations/${conversationId}/messages?after=${after}&limit=${limit}`, { token: user.token })).body;
    forwards.push(...page.messages.map((m: { seq: number }) => m.seq));
    after = page.nextAfter;
  }
  return { backwards, forwards, pages };
}

export const range = (lo: number, hi: number) => Array.from({ length: Math.max(0, hi - lo + 1) }, (_, i) => lo + i);

/** The HISTORY bucket with R2 failing: `down` fails every call, `writesDown` only puts (reads still work). */
export function flakyBucket(mode: "down" | "writesDown"): R2Bucket {
  const fail = () => Promise.reject(new Error("R2: simulated outage"));
  return {
    get: mode === "down" ? fail : (key: string) => env.HISTORY.get(key),
    put: fail,
    delete: fail,
    list: mode === "down" ? fail : (o?: R2ListOptions) => env.HISTORY.list(o),
  } as unknown as R2Bucket;
}

/** Use `bucket` for the conversation's cold tier (undefined: the real one again). */
export async function coldBucket(conversationId: string, bucket: R2Bucket | undefined): Promise<void> {
  await runInDurableObject(stubOf(conversationId), (o: ConversationObject) => void (o.coldBucket = bucket));
}
