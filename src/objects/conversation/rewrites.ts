// Changes to rows the archive already holds (or may be holding by the end of a run in flight), in D1 or in a
// cold R2 segment: an edit, delete or reaction rewrites its message, a delete or a superseding edit redacts
// older edit entries, and replies' quotes follow their parent. The `d1_rewrites` table queues them, in order,
// in the same transaction as the change; the archive job (archive.ts) applies them to D1 and to the segments
// holding their rows (segments.ts) after each batch of new rows, so a row archived with an old state is
// corrected by the rewrite queued after it. Until then, every read of the archive overlays what is queued
// here (tiers.ts), so nothing stale (a deleted body above all) is ever served.
import type { D1Statement, HistoryArchive } from "../../db/archive";
import type { ReplyQuote } from "../../protocol/frames";
import type { ColdRewrite, ColdSegments } from "./segments";
import type { StoredMessage } from "./stream";

/** The three columns a rewrite sets (stream.ts columnsOf). */
export interface RowColumns {
  body: string;
  attachments: string | null;
  extra: string | null;
}

/** What is queued at one moment: the newest row rewrite per seq, and the newest quote per parent. */
export interface PendingRewrites {
  rows: Map<number, RowColumns>;
  quotes: Map<number, ReplyQuote>;
}

/** Rewrites applied per D1 batch. */
const REWRITES_PER_BATCH = 50;

export class D1Rewrites {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Queue a message's (or entry's) new columns for D1. */
  row(seq: number, columns: RowColumns): void {
    this.#sql.exec("INSERT INTO d1_rewrites (kind, seq, row) VALUES ('row', ?, ?)", seq, JSON.stringify(columns));
  }

  /** Queue the new quote of every archived reply to `parent`. */
  quote(parent: number, quote: ReplyQuote): void {
    this.#sql.exec("INSERT INTO d1_rewrites (kind, seq, row) VALUES ('quote', ?, ?)", parent, JSON.stringify(quote));
  }

  /** The newest queued rewrite's id (0: none): what an erasure waits for (member-data.ts). */
  newest(): number {
    return this.#sql.exec<{ id: number | null }>("SELECT max(id) AS id FROM d1_rewrites").one().id ?? 0;
  }

  /** Rewrites queued at or before `id` that D1 and the segments do not have yet. */
  pendingUpTo(id: number): number {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM d1_rewrites WHERE id <= ?", id).one().n;
  }

  hasPending(): boolean {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM d1_rewrites").one().n > 0;
  }

  /**
   * What is queued for rows lo..hi and for every quote. Take one before reading D1 and one after, and overlay
   * both (`merge`): a rewrite applied and dropped while the read was in flight is still in the first.
   */
  snapshot(lo: number, hi: number): PendingRewrites {
    const rows = new Map<number, RowColumns>();
    for (const r of this.#sql.exec<{ seq: number; row: string }>("SELECT seq, row FROM d1_rewrites WHERE kind = 'row' AND seq BETWEEN ? AND ? ORDER BY id", lo, hi)) {
      rows.set(r.seq, JSON.parse(r.row) as RowColumns);
    }
    const quotes = new Map<number, ReplyQuote>();
    for (const r of this.#sql.exec<{ seq: number; row: string }>("SELECT seq, row FROM d1_rewrites WHERE kind = 'quote' ORDER BY id")) {
      quotes.set(r.seq, JSON.parse(r.row) as ReplyQuote);
    }
    return { rows, quotes };
  }

  /** Messages read from D1 with what was queued (`before` the read, then `after` it; later wins) laid over them. */
  overlay(messages: StoredMessage[], before: PendingRewrites, after: PendingRewrites): StoredMessage[] {
    return messages.map((m) => {
      const columns = after.rows.get(m.seq) ?? before.rows.get(m.seq);
      let out = m;
      if (columns) out = withColumns(m, columns);
      const parent = out.replyTo?.seq;
      const quote = parent !== undefined ? (after.quotes.get(parent) ?? before.quotes.get(parent)) : undefined;
      if (quote && out.replyTo && !out.deleted) out = { ...out, replyTo: quote };
      return out;
    });
  }

  /**
   * Apply queued rewrites in order, one batch, to D1 and to the cold segments holding any of their rows (an
   * UPDATE of a row no longer in D1 changes nothing). Returns true if more are queued. A failure throws
   * (retried); the batch stays queued until both tiers have it.
   */
  async apply(d1: HistoryArchive, conversationId: string, cold: ColdSegments): Promise<boolean> {
    const rows = this.#sql
      .exec<{ id: number; kind: string; seq: number; row: string }>("SELECT id, kind, seq, row FROM d1_rewrites ORDER BY id LIMIT ?", REWRITES_PER_BATCH)
      .toArray();
    if (rows.length === 0) return false;
    const statements: D1Statement[] = rows.map((r) => {
      if (r.kind === "row") {
        const c = JSON.parse(r.row) as RowColumns;
        return { sql: "UPDATE messages SET body = ?, attachments = ?, extra = ? WHERE conversation_id = ? AND seq = ?", params: [c.body, c.attachments, c.extra, conversationId, r.seq] };
      }
      return {
        // A deleted reply keeps its own tombstone: only live replies take the parent's quote.
        sql: "UPDATE messages SET extra = json_set(extra, '$.replyTo', json(?)) WHERE conversation_id = ? AND reply_to = ? AND json_extract(extra, '$.deleted') IS NULL",
        params: [r.row, conversationId, r.seq],
      };
    });
    await d1.run(statements);
    const coldRewrites: ColdRewrite[] = rows.map((r) =>
      r.kind === "row" ? { kind: "row", seq: r.seq, columns: JSON.parse(r.row) as RowColumns } : { kind: "quote", parent: r.seq, quote: JSON.parse(r.row) as ReplyQuote },
    );
    if (cold.concerns(coldRewrites)) await cold.rewrite(coldRewrites);
    this.#sql.exec("DELETE FROM d1_rewrites WHERE id <= ?", rows[rows.length - 1]!.id);
    return rows.length === REWRITES_PER_BATCH;
  }
}

/** A stored message with its changing columns replaced. */
function withColumns(m: StoredMessage, c: RowColumns): StoredMessage {
  const out: StoredMessage = { seq: m.seq, id: m.id, senderId: m.senderId, clientMsgId: m.clientMsgId, body: c.body, createdAt: m.createdAt };
  if (c.attachments) out.attachments = JSON.parse(c.attachments) as StoredMessage["attachments"];
  if (c.extra) Object.assign(out, JSON.parse(c.extra) as Partial<StoredMessage>);
  return out;
}
