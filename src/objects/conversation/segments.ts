// The cold tier: old entries as immutable gzip NDJSON segments in R2 (the HISTORY bucket), a line per row as
// the archive stores it (ArchivedRow), and the segment index in this object's SQLite: `segments` (which seqs
// each object in R2 holds), `cold_replies` (which cold rows reply to which parent, so a parent's new quote
// finds the segments to rewrite) and `r2_garbage` (keys to delete: replaced versions, and a version being
// written until the index names it, so a crash mid-write leaves nothing behind).
// A segment never changes in place: an edit, delete or retention cut writes a new version under a new key,
// the index switches to it in one transaction, and the old key is deleted after. Only the archive job
// (archive.ts) writes here, so these steps never interleave with each other.
import type { ArchivedRow } from "../../db/archive";
import type { ReplyQuote } from "../../protocol/frames";
import type { Meta } from "./meta";
import type { RowColumns } from "./rewrites";
import { toStored, type StoredMessage } from "./stream";

/** Decoded segments kept in memory (a history page usually reads one or two), at most this many ... */
const SEGMENT_CACHE = 4;
/** ... and about this many bytes of rows (1,000 rows of 8 KB bodies are 8 MB; the object has 128 MB). */
const SEGMENT_CACHE_BYTES = 12 * 1024 * 1024;
/** Keys deleted per R2 call (R2 accepts up to 1,000). */
const GARBAGE_BATCH = 500;

interface SegmentIndexRow {
  firstSeq: number;
  lastSeq: number;
  key: string;
  version: number;
  [k: string]: SqlStorageValue;
}

/** One change to apply to cold rows, in queue order (rewrites.ts). */
export type ColdRewrite = { kind: "row"; seq: number; columns: RowColumns } | { kind: "quote"; parent: number; quote: ReplyQuote };

export class ColdSegments {
  readonly #sql: SqlStorage;
  readonly #bucket: () => R2Bucket;
  readonly #meta: Meta;
  readonly #cache = new Map<string, { rows: ArchivedRow[]; bytes: number }>();
  #cachedBytes = 0;

  constructor(sql: SqlStorage, meta: Meta, bucket: () => R2Bucket) {
    this.#sql = sql;
    this.#meta = meta;
    this.#bucket = bucket;
  }

  /** Every seq up to this is in R2, or gone by retention (meta `cold_seq`: it never goes down). */
  get coldSeq(): number {
    return this.#meta.coldSeq;
  }

  /** How many segments the index holds, and their bytes (ops, tests). */
  stats(): { segments: number; bytes: number; rows: number } {
    return this.#sql.exec<{ segments: number; bytes: number; rows: number }>("SELECT count(*) AS segments, coalesce(sum(bytes), 0) AS bytes, coalesce(sum(rows), 0) AS rows FROM segments").one();
  }

  /** Segment objects replaced or abandoned and not deleted from R2 yet (an old version may hold a deleted body). */
  garbage(): number {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM r2_garbage").one().n;
  }

  /** Write rows (ascending, contiguous, all above coldSeq) as one new segment, then index it. Throws if R2 fails. */
  async append(rows: ArchivedRow[]): Promise<void> {
    if (rows.length === 0) return;
    const first = rows[0]!.seq;
    const last = rows[rows.length - 1]!.seq;
    if (first <= this.coldSeq) throw new Error(`segment ${first}-${last} overlaps the cold tier (up to ${this.coldSeq})`);
    const key = this.#key(first, 1);
    const bytes = await this.#put(key, rows);
    this.#sql.exec("DELETE FROM r2_garbage WHERE key = ?", key);
    this.#index(first, last, key, 1, rows, bytes);
    for (const r of rows) if (r.parent !== null) this.#sql.exec("INSERT OR IGNORE INTO cold_replies (parent, seq) VALUES (?, ?)", r.parent, r.seq);
    this.#meta.advance("cold_seq", last);
    this.#remember(key, rows);
  }

  /** Stored messages lo..hi (ascending) of the cold tier. Throws if a segment cannot be read. */
  async read(lo: number, hi: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for (const seg of this.#covering(lo, Math.min(hi, this.coldSeq))) {
      for (const r of await this.#rows(seg)) if (r.seq >= lo && r.seq <= hi) out.push(stored(r));
    }
    return out;
  }

  /** Up to `limit` cold replies to `parent` with `after < seq`, ascending. */
  async replies(parent: number, after: number, limit: number): Promise<StoredMessage[]> {
    const seqs = this.#sql
      .exec<{ seq: number }>("SELECT seq FROM cold_replies WHERE parent = ? AND seq > ? ORDER BY seq LIMIT ?", parent, after, limit)
      .toArray()
      .map((r) => r.seq);
    const out: StoredMessage[] = [];
    for (const seq of seqs) out.push(...(await this.read(seq, seq)));
    return out;
  }

  /** Of these queued rewrites, do any concern cold rows? */
  concerns(rewrites: ColdRewrite[]): boolean {
    return rewrites.some((r) => (r.kind === "row" ? r.seq <= this.coldSeq : this.#replySeqs(r.parent).length > 0));
  }

  /** Apply rewrites (in queue order) to the segments holding their rows: a new version of each such segment. */
  async rewrite(rewrites: ColdRewrite[]): Promise<void> {
    const touched = new Map<number, SegmentIndexRow>();
    const add = (seq: number) => {
      const seg = this.#covering(seq, seq)[0];
      if (seg) touched.set(seg.firstSeq, seg);
    };
    for (const r of rewrites) {
      if (r.kind === "row") add(r.seq);
      else for (const seq of this.#replySeqs(r.parent)) add(seq);
    }
    for (const seg of touched.values()) {
      const rows = (await this.#rows(seg)).map((row) => ({ ...row }));
      const bySeq = new Map(rows.map((row) => [row.seq, row]));
      for (const r of rewrites) {
        if (r.kind === "row") {
          const row = bySeq.get(r.seq);
          if (row) Object.assign(row, r.columns);
        } else {
          for (const row of rows) if (row.parent === r.parent) setQuote(row, r.quote);
        }
      }
      await this.#replace(seg, rows);
    }
  }

  /** Drop every cold row with seq <= upTo (retention): whole segments are deleted, a straddling one is rewritten. */
  async dropThrough(upTo: number): Promise<void> {
    for (const seg of this.#covering(1, upTo)) {
      if (seg.lastSeq <= upTo) {
        this.#sql.exec("DELETE FROM segments WHERE first_seq = ?", seg.firstSeq);
        this.#sql.exec("DELETE FROM cold_replies WHERE seq BETWEEN ? AND ?", seg.firstSeq, seg.lastSeq);
        this.#sql.exec("INSERT OR IGNORE INTO r2_garbage (key) VALUES (?)", seg.key);
        this.#forget(seg.key);
      } else {
        const rows = (await this.#rows(seg)).filter((r) => r.seq > upTo);
        await this.#replace(seg, rows);
      }
    }
  }

  /** Delete replaced and abandoned segment objects. Returns true if more are queued. Throws if R2 fails. */
  async collectGarbage(): Promise<boolean> {
    const keys = this.#sql.exec<{ key: string }>("SELECT key FROM r2_garbage LIMIT ?", GARBAGE_BATCH).toArray().map((r) => r.key);
    if (keys.length === 0) return false;
    await this.#bucket().delete(keys);
    for (const key of keys) this.#sql.exec("DELETE FROM r2_garbage WHERE key = ?", key);
    return keys.length === GARBAGE_BATCH;
  }

  /** Segment `seg` now holds `rows` (a new version; none left: the segment goes). */
  async #replace(seg: SegmentIndexRow, rows: ArchivedRow[]): Promise<void> {
    if (rows.length === 0) {
      this.#sql.exec("DELETE FROM segments WHERE first_seq = ?", seg.firstSeq);
    } else {
      const first = rows[0]!.seq;
      const version = seg.version + 1;
      const key = this.#key(first, version);
      const bytes = await this.#put(key, rows);
      this.#sql.exec("DELETE FROM r2_garbage WHERE key = ?", key);
      // A retention cut may raise the first seq: the row is keyed by it.
      this.#sql.exec("DELETE FROM segments WHERE first_seq = ?", seg.firstSeq);
      this.#index(first, seg.lastSeq, key, version, rows, bytes);
      this.#remember(key, rows);
    }
    this.#sql.exec("DELETE FROM cold_replies WHERE seq BETWEEN ? AND ? AND seq < ?", seg.firstSeq, seg.lastSeq, rows[0]?.seq ?? seg.lastSeq + 1);
    this.#sql.exec("INSERT OR IGNORE INTO r2_garbage (key) VALUES (?)", seg.key);
    this.#forget(seg.key);
  }

  #index(first: number, last: number, key: string, version: number, rows: ArchivedRow[], bytes: number): void {
    let oldest = Infinity;
    let newest = 0;
    for (const r of rows) {
      oldest = Math.min(oldest, r.createdAt);
      newest = Math.max(newest, r.createdAt);
    }
    this.#sql.exec(
      "INSERT INTO segments (first_seq, last_seq, key, version, rows, bytes, oldest_at, newest_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      first,
      last,
      key,
      version,
      rows.length,
      bytes,
      oldest,
      newest,
      Date.now(),
    );
  }

  /** The newest cold seq created before `time` (0: none): from the index, reading at most the one segment that straddles it. */
  async newestBefore(time: number): Promise<number> {
    const whole = this.#sql.exec<{ s: number | null }>("SELECT max(last_seq) AS s FROM segments WHERE newest_at < ?", time).one().s ?? 0;
    const straddling = this.#sql
      .exec<SegmentIndexRow>(
        "SELECT first_seq AS firstSeq, last_seq AS lastSeq, key, version FROM segments WHERE oldest_at < ? AND newest_at >= ? ORDER BY first_seq DESC LIMIT 1",
        time,
        time,
      )
      .toArray()[0];
    if (!straddling) return whole;
    let newest = whole;
    for (const r of await this.#rows(straddling)) if (r.createdAt < time) newest = Math.max(newest, r.seq);
    return newest;
  }

  /** gzip NDJSON to R2 under `key`; the key is garbage until the caller indexes it. Returns the bytes written. */
  async #put(key: string, rows: ArchivedRow[]): Promise<number> {
    this.#sql.exec("INSERT OR IGNORE INTO r2_garbage (key) VALUES (?)", key);
    const text = rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
    const gz = await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer();
    await this.#bucket().put(key, gz, {
      httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
      customMetadata: { conversation: this.#meta.id, firstSeq: String(rows[0]!.seq), lastSeq: String(rows[rows.length - 1]!.seq), rows: String(rows.length) },
    });
    return gz.byteLength;
  }

  async #rows(seg: SegmentIndexRow): Promise<ArchivedRow[]> {
    const cached = this.#cache.get(seg.key);
    if (cached) {
      this.#remember(seg.key, cached.rows);
      return cached.rows;
    }
    const object = await this.#bucket().get(seg.key);
    if (!object) throw new Error(`cold segment ${seg.key} is missing from R2`);
    const text = await new Response(object.body.pipeThrough(new DecompressionStream("gzip"))).text();
    const rows = text
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as ArchivedRow);
    this.#remember(seg.key, rows);
    return rows;
  }

  #remember(key: string, rows: ArchivedRow[]): void {
    this.#forget(key);
    let bytes = 0;
    for (const r of rows) bytes += 200 + r.body.length * 2 + (r.extra?.length ?? 0) * 2 + (r.attachments?.length ?? 0) * 2;
    this.#cache.set(key, { rows, bytes });
    this.#cachedBytes += bytes;
    while (this.#cache.size > 1 && (this.#cache.size > SEGMENT_CACHE || this.#cachedBytes > SEGMENT_CACHE_BYTES)) this.#forget(this.#cache.keys().next().value!);
  }

  #forget(key: string): void {
    const entry = this.#cache.get(key);
    if (!entry) return;
    this.#cache.delete(key);
    this.#cachedBytes -= entry.bytes;
  }

  /** Index rows of the segments overlapping lo..hi, ascending. */
  #covering(lo: number, hi: number): SegmentIndexRow[] {
    if (hi < lo) return [];
    return this.#sql
      .exec<SegmentIndexRow>(
        `SELECT first_seq AS firstSeq, last_seq AS lastSeq, key, version FROM segments
         WHERE last_seq >= ? AND first_seq <= ? ORDER BY first_seq`,
        lo,
        hi,
      )
      .toArray();
  }

  #replySeqs(parent: number): number[] {
    return this.#sql.exec<{ seq: number }>("SELECT seq FROM cold_replies WHERE parent = ?", parent).toArray().map((r) => r.seq);
  }

  #key(firstSeq: number, version: number): string {
    return `h/${this.#meta.id}/${String(firstSeq).padStart(12, "0")}.v${version}.ndjson.gz`;
  }
}

/** A cold row as a stored message (its index columns dropped). */
function stored(row: ArchivedRow): StoredMessage {
  const { parent: _p, target: _t, ...rest } = row;
  return toStored(rest);
}

/** A reply's new quote (as D1's json_set does): a deleted reply keeps its own tombstone. */
function setQuote(row: ArchivedRow, quote: ReplyQuote): void {
  const extra = row.extra ? (JSON.parse(row.extra) as Record<string, unknown>) : {};
  if (extra.deleted !== undefined) return;
  extra.replyTo = quote;
  row.extra = JSON.stringify(extra);
}
