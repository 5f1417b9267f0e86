// The conversation's metadata: the `meta` key/value table (id, type, title, creator, epoch, and the
// archive and fan-out positions). Read once when the object wakes and cached: nothing else writes the
// table, and a write goes to both. Call reload() if a transaction that wrote here rolled back.
import type { ConversationType } from "../../protocol/api";
import { randomToken } from "../../lib/ids";
import { LEGACY_SHARD, pickShard } from "../../db/shards";

type Key = "id" | "type" | "title" | "created_by" | "created_at" | "epoch" | "archived_seq" | "notified_seq" | "blocked" | "d1_shard" | "cold_seq" | "d1_cleared" | "retained_from" | "retention_done" | "retention_days";

export class Meta {
  readonly #sql: SqlStorage;
  #values = new Map<string, string>();

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    this.reload();
  }

  reload(): void {
    this.#values = new Map(this.#sql.exec<{ key: string; value: string }>("SELECT key, value FROM meta").toArray().map((r) => [r.key, r.value]));
  }

  get(key: Key): string | null {
    return this.#values.get(key) ?? null;
  }

  set(key: Key, value: string): void {
    this.#sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value);
    this.#values.set(key, value);
  }

  remove(key: Key): void {
    this.#sql.exec("DELETE FROM meta WHERE key = ?", key);
    this.#values.delete(key);
  }

  /** Raise a numeric key to `value`; never lowers it, in storage or in the cache, whatever order writers run in. */
  advance(key: "archived_seq" | "notified_seq" | "cold_seq" | "d1_cleared" | "retained_from" | "retention_done", value: number): void {
    this.#sql.exec(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = CAST(max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
      key,
      String(value),
    );
    this.#values.set(key, String(Math.max(Number(this.get(key) ?? "0"), value)));
  }

  /** Write the metadata of a new conversation (inside the creating transaction). */
  create(input: { id: string; type: ConversationType; title: string | null; createdBy: string }, now: number, shards: readonly string[]): void {
    this.set("id", input.id);
    this.set("type", input.type);
    this.set("title", input.title ?? "");
    this.set("created_by", input.createdBy);
    this.set("created_at", String(now));
    // The epoch names this stream. It changes only if the stream is ever rebuilt, which tells
    // clients that their cached seqs no longer mean what they did.
    this.set("epoch", randomToken(9));
    this.set("archived_seq", "0");
    // Chosen once, never again: adding shards later must not move this conversation's archive.
    this.set("d1_shard", pickShard(input.id, shards));
  }

  /** The conversation id; "" before the conversation exists. */
  get id(): string {
    return this.get("id") ?? "";
  }

  get exists(): boolean {
    return this.get("id") !== null;
  }

  get type(): ConversationType {
    return (this.get("type") ?? "group") as ConversationType;
  }

  get title(): string | null {
    return this.get("title") || null;
  }

  get epoch(): string {
    return this.get("epoch") ?? "";
  }

  /** The D1 binding holding this conversation's warm tier (src/db/shards.ts). */
  get shard(): string {
    return this.get("d1_shard") ?? LEGACY_SHARD;
  }

  /** Highest seq known to be in D1. */
  get archivedSeq(): number {
    return Number(this.get("archived_seq") ?? "0");
  }

  /** Highest seq moved to the cold tier (R2 segments, segments.ts); 0 before the first. */
  get coldSeq(): number {
    return Number(this.get("cold_seq") ?? "0");
  }

  /** The lowest seq history may still hold: everything below it was deleted by retention (retention.ts). */
  get retainedFrom(): number {
    return Number(this.get("retained_from") ?? "1");
  }

  /** Rows up to this seq were deleted from D1 (moved to R2, or past retention). */
  get d1Cleared(): number {
    return Number(this.get("d1_cleared") ?? "0");
  }

  /** Everything up to this seq was deleted by retention from the hot tail and R2 (retention.ts). */
  get retentionDone(): number {
    return Number(this.get("retention_done") ?? "0");
  }

  /** Highest seq the members' inboxes have been told about. */
  get notifiedSeq(): number {
    return Number(this.get("notified_seq") ?? "0");
  }
}
