// After the workload: what the server holds. The history API gives the server's order (it reads the
// object's hot tail and, for older pages, D1); D1 is also read directly when we can (local persist dir,
// or `wrangler d1 execute --remote` with the user's own credentials).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { sameStored, type ConversationTruth, type MessageRecord } from "./checker.ts";
import { http, pick } from "./workload.ts";
import { d1Bindings } from "../local-d1.mjs";
import type { ColdReader } from "./cold.ts";
import type { ArchivedColumns } from "./records.ts";

const run = promisify(execFile);

interface HistoryPage {
  messages: MessageRecord[];
  nextBefore: number | null;
  lastSeq: number;
  epoch: string;
}

/** Every message of a conversation through GET /messages, newest page first, 200 at a time. */
export async function readHistory(url: string, token: string, conversationId: string): Promise<{ epoch: string; lastSeq: number; messages: MessageRecord[] }> {
  const messages: MessageRecord[] = [];
  let before: number | null = null;
  let lastSeq = -1;
  let epoch = "";
  for (let pages = 0; pages < 1_000_000; pages++) {
    const q: string = before === null ? "limit=200" : `limit=200&before=${before}`;
    const r = await http<HistoryPage>(url, "GET", `/v1/conversations/${conversationId}/messages?${q}`, { token });
    if (r.status !== 200) throw new Error(`history of ${conversationId} failed: ${r.status} ${JSON.stringify(r.body)}`);
    if (lastSeq < 0) {
      lastSeq = r.body.lastSeq;
      epoch = r.body.epoch;
    }
    for (const m of r.body.messages) messages.push(pick(m));
    if (r.body.nextBefore === null) break;
    before = r.body.nextBefore;
  }
  return { epoch, lastSeq, messages };
}

/** Where the archive can be read directly: a local run's D1 databases and R2 segments, remote D1 databases, or nowhere. */
export type D1Target = { kind: "local"; persistDir: string; cwd: string; cold: ColdReader } | { kind: "remote"; database: string; cwd: string } | { kind: "none" };

/** Runs `sql` on every D1 database the archive may use (the primary and each shard) and concatenates the rows. */
async function d1Query<T>(target: Exclude<D1Target, { kind: "none" }>, sql: string): Promise<T[]> {
  const wheres =
    target.kind === "local"
      ? d1Bindings(target.cwd).map((binding) => [binding, "--local", "--persist-to", target.persistDir])
      : target.database.split(",").map((name) => [name.trim(), "--remote"]);
  const rows = await Promise.all(
    wheres.map(async (where) => {
      const { stdout } = await run(join(target.cwd, "node_modules", ".bin", "wrangler"), ["d1", "execute", ...where, "--json", "--command", sql], {
        cwd: target.cwd,
        maxBuffer: 1024 * 1024 * 1024,
        env: { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" },
      });
      const parsed = JSON.parse(stdout) as { results: T[]; success: boolean }[];
      return parsed.flatMap((p) => p.results);
    }),
  );
  return rows.flat();
}

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** An archived row (D1 or R2) as an entry: `extra` holds the wire fields besides the base columns (edited, deleted, reactions, change). */
function rowEntry(r: ArchivedColumns): MessageRecord {
  const extra = r.extra ? (JSON.parse(r.extra) as Partial<MessageRecord>) : {};
  return pick({ ...extra, seq: r.seq, id: r.id, senderId: r.senderId, clientMsgId: r.clientMsgId, body: r.body, createdAt: r.createdAt });
}

/**
 * The archive read directly: D1 (every shard) and, locally, the R2 segments of the cold tier. It is written from
 * the object's alarm a little after the ack, and changes reach it through the object's rewrite queue a little
 * after that: wait until D1 and R2 together hold every seq of the stream once and every row is in the state
 * history serves (or the timeout passes), then return the rows (both tiers together: a seq in both, or in two
 * segment objects, stays twice and is reported). Null when the archive cannot be read directly.
 */
export async function readD1(
  target: D1Target,
  histories: Map<string, { lastSeq: number; messages: MessageRecord[] }>,
  timeoutMs: number,
): Promise<{ rows: Map<string, MessageRecord[]>; coldRows: Map<string, number> } | null> {
  if (target.kind === "none") return null;
  const ids = [...histories.keys()];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = new Map<string, MessageRecord[]>(ids.map((id) => [id, []]));
    const coldRows = new Map<string, number>();
    for (const id of ids) {
      const rows = await d1Query<ArchivedColumns>(
        target,
        `SELECT seq, id, sender_id AS senderId, client_msg_id AS clientMsgId, body, created_at AS createdAt, extra FROM messages WHERE conversation_id = ${quote(id)} ORDER BY seq`,
      );
      const cold = target.kind === "local" ? await target.cold.rows(id) : [];
      coldRows.set(id, cold.length);
      out.set(id, [...cold, ...rows].map(rowEntry).sort((a, b) => a.seq - b.seq));
    }
    const settled = ids.every((id) => {
      const rows = out.get(id)!;
      const bySeq = new Map(rows.map((r) => [r.seq, r]));
      const h = histories.get(id)!;
      return rows.length === h.lastSeq && bySeq.size === rows.length && h.messages.every((m) => {
        const row = bySeq.get(m.seq);
        return row !== undefined && sameStored(row, m);
      });
    });
    if (settled || Date.now() > deadline) return { rows: out, coldRows };
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * History as the reader of each conversation reads it, then as every member reads it (their own `me` on
 * reactions), then D1. The workload is over: every read sees the same final state.
 */
export async function readTruth(
  url: string,
  readers: Map<string, string>,
  members: Map<string, { userId: string; token: string }[]>,
  d1: D1Target,
  d1TimeoutMs: number,
): Promise<ConversationTruth[]> {
  const histories = new Map<string, Awaited<ReturnType<typeof readHistory>>>();
  const memberHistories = new Map<string, Record<string, MessageRecord[]>>();
  for (const [cid, token] of readers) {
    histories.set(cid, await readHistory(url, token, cid));
    const reads: Record<string, MessageRecord[]> = {};
    // A few at a time: the object serves them one after another anyway.
    const list = members.get(cid) ?? [];
    for (let i = 0; i < list.length; i += 4) {
      const batch = list.slice(i, i + 4);
      const got = await Promise.all(batch.map((m) => readHistory(url, m.token, cid)));
      batch.forEach((m, j) => (reads[m.userId] = got[j]!.messages));
    }
    memberHistories.set(cid, reads);
  }
  const archive = await readD1(d1, histories, d1TimeoutMs);
  const rows = archive?.rows;
  return [...histories].map(([conversationId, h]) => ({
    conversationId,
    epoch: h.epoch,
    lastSeq: h.lastSeq,
    history: h.messages,
    d1: rows ? (rows.get(conversationId) ?? []) : null,
    coldRows: archive?.coldRows.get(conversationId) ?? 0,
    memberHistories: memberHistories.get(conversationId) ?? {},
  }));
}
