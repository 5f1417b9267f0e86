// Everything the conversation object writes to or reads from D1 goes through this class,
// so tests (and the fault-injection suite) can swap it for one that fails.
import type { StoredMessage, StoredRow } from "../objects/conversation/stream";
import { toStored } from "../objects/conversation/stream";

/** An entry as archived: the stored message and the columns that index it (docs/protocol.md 15). */
export interface ArchiveRow {
  message: StoredMessage;
  /** The thread parent of a reply (kept on its tombstone). */
  replyTo: number | null;
  /** The message a change entry changes. */
  target: number | null;
  /** The changing columns, as stream.ts columnsOf() makes them. */
  columns: { body: string; attachments: string | null; extra: string | null };
}

const SELECT_COLUMNS = "seq, id, sender_id AS senderId, client_msg_id AS clientMsgId, body, created_at AS createdAt, attachments, extra";

/** A row of the archive as stored (a D1 row, or a line of a cold segment): the stored columns and the two that index it. */
export type ArchivedRow = StoredRow & {
  /** reply_to: the thread parent of a reply. */
  parent: number | null;
  /** The message a change entry changes. */
  target: number | null;
};

export interface D1Statement {
  sql: string;
  params: (string | number | null)[];
}

/** D1 allows 100 bound parameters per statement: 11 a row, 9 rows is 99. */
const ROWS_PER_INSERT = 9;

/**
 * D1 already holds a different message at a seq being archived (e.g. the object's storage was restored from
 * an older point and its seqs were reused). `INSERT OR IGNORE` kept D1's row; pruning the object's copy would
 * lose it. `seqs` are the conflicting seqs, ascending.
 */
export class ArchiveConflict extends Error {
  constructor(readonly seqs: number[]) {
    super(`D1 holds other messages at seq ${seqs.slice(0, 10).join(", ")}${seqs.length > 10 ? ", ..." : ""}`);
    this.name = "ArchiveConflict";
  }
}

export class HistoryArchive {
  constructor(private readonly db: D1Database) {}

  /**
   * Idempotent: rows already archived (same conversation and seq) are left as they are. Then, in the same
   * batch, reads back the ids at those seqs: if any differs from the message written, throws ArchiveConflict
   * (the rows that matched are in D1; nothing was overwritten).
   */
  async writeMessages(conversationId: string, rows: ArchiveRow[]): Promise<void> {
    if (rows.length === 0) return;
    const messages = rows.map((r) => r.message);
    const statements: D1PreparedStatement[] = [];
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      const chunk = rows.slice(i, i + ROWS_PER_INSERT);
      const placeholders = chunk.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ");
      const params = chunk.flatMap(({ message: m, columns: c, replyTo, target }) => [
        conversationId,
        m.seq,
        m.id,
        m.senderId,
        m.clientMsgId,
        c.body,
        m.createdAt,
        c.attachments,
        replyTo,
        target,
        c.extra,
      ]);
      statements.push(
        this.db
          .prepare(
            `INSERT OR IGNORE INTO messages (conversation_id, seq, id, sender_id, client_msg_id, body, created_at, attachments, reply_to, target, extra) VALUES ${placeholders}`,
          )
          .bind(...params),
      );
    }
    const first = messages[0]!.seq;
    const last = messages[messages.length - 1]!.seq;
    statements.push(
      this.db.prepare("SELECT seq, id FROM messages WHERE conversation_id = ? AND seq BETWEEN ? AND ?").bind(conversationId, first, last),
    );
    const results = await this.db.batch<{ seq: number; id: string }>(statements);
    const stored = new Map((results[results.length - 1]?.results ?? []).map((r) => [r.seq, r.id]));
    const conflicts = messages.filter((m) => stored.get(m.seq) !== m.id).map((m) => m.seq);
    if (conflicts.length > 0) throw new ArchiveConflict(conflicts);
  }

  /** Entries with `from <= seq <= to`, ascending, as stored (bookkeeping included: callers send `wire()` of them). */
  async readMessages(conversationId: string, from: number, to: number): Promise<StoredMessage[]> {
    if (to < from) return [];
    const { results } = await this.db
      .prepare(`SELECT ${SELECT_COLUMNS} FROM messages WHERE conversation_id = ? AND seq BETWEEN ? AND ? ORDER BY seq`)
      .bind(conversationId, from, to)
      .all<StoredRow>();
    return results.map(toStored);
  }

  /** Rows with `from <= seq <= to` exactly as stored, with their index columns (moving them to the cold tier). */
  async readRows(conversationId: string, from: number, to: number): Promise<ArchivedRow[]> {
    if (to < from) return [];
    const { results } = await this.db
      .prepare(`SELECT ${SELECT_COLUMNS}, reply_to AS parent, target FROM messages WHERE conversation_id = ? AND seq BETWEEN ? AND ? ORDER BY seq`)
      .bind(conversationId, from, to)
      .all<ArchivedRow>();
    return results;
  }

  /** The newest seq of the conversation created before `time` (0: none). */
  async newestBefore(conversationId: string, time: number): Promise<number> {
    const row = await this.db.prepare("SELECT max(seq) AS s FROM messages WHERE conversation_id = ? AND created_at < ?").bind(conversationId, time).first<{ s: number | null }>();
    return row?.s ?? 0;
  }

  /** Delete rows `from <= seq <= to` (they are in the cold tier now, or past retention). */
  async deleteRows(conversationId: string, from: number, to: number): Promise<void> {
    if (to < from) return;
    await this.db.prepare("DELETE FROM messages WHERE conversation_id = ? AND seq BETWEEN ? AND ?").bind(conversationId, from, to).run();
  }

  /** Up to `limit` replies to `parent` with `after < seq < below`, ascending. */
  async readReplies(conversationId: string, parent: number, after: number, below: number, limit: number): Promise<StoredMessage[]> {
    const { results } = await this.db
      .prepare(`SELECT ${SELECT_COLUMNS} FROM messages WHERE conversation_id = ? AND reply_to = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?`)
      .bind(conversationId, parent, after, below, limit)
      .all<StoredRow>();
    return results.map(toStored);
  }

  /** Run queued directory writes (conversation rows, membership) in order, in one batch. */
  async run(statements: D1Statement[]): Promise<void> {
    if (statements.length === 0) return;
    await this.db.batch(statements.map((s) => this.db.prepare(s.sql).bind(...s.params)));
  }
}
