// The storage ceiling of one conversation object. The platform stops an object at 10 GB, and then every write
// fails (a send would answer internal_error); long before that, this refuses new messages with
// `conversation_storage_full` and logs loudly. It owns no table: it reads the SQLite database size.
//
// Off the hot path: the size is measured (ctx.storage.sql.databaseSize, no SQL statement) when the object
// wakes and on every run of the archive job, which runs while messages wait for D1, D1 being down included.
// Between two measurements each stored message adds an estimate in memory, so the check a send makes is one
// comparison.

/** Logged as a warning from this share of the ceiling on. */
export const STORAGE_WARN_RATIO = 0.8;
/** Per stored message, on top of its body: the other columns, the idempotency index and page slack (bytes). */
const ROW_OVERHEAD_BYTES = 200;
/** The warning is repeated at most this often while the object stays above it. */
const WARN_EVERY_MS = 10 * 60_000;

export class Capacity {
  readonly #storage: DurableObjectStorage;
  readonly #limits: { storageCeilingBytes: number };
  readonly #logContext: () => Record<string, unknown>;
  /** Bytes at the last measurement, plus the estimate of what was stored since. */
  #bytes = 0;
  #full = false;
  #warnedAt = 0;
  #measuredAt = 0;

  constructor(storage: DurableObjectStorage, limits: { storageCeilingBytes: number }, logContext: () => Record<string, unknown>) {
    this.#storage = storage;
    this.#limits = limits;
    this.#logContext = logContext;
    this.measure();
  }

  /** True at or over the ceiling: new messages are refused until the archive prunes the hot tail below it. */
  get full(): boolean {
    // While full, a refused send re-reads the size at most once a second (no SQL), so space freed by
    // anything is noticed even if no archive run follows.
    if (this.#full && Date.now() - this.#measuredAt >= 1_000) this.measure();
    return this.#full;
  }

  /** Read the database size and log when it is high. */
  measure(): void {
    this.#bytes = this.#storage.sql.databaseSize;
    this.#measuredAt = Date.now();
    this.#update();
  }

  /** A message of `bodyBytes` was stored (hot path: memory only; logs only when a threshold is crossed). */
  stored(bodyBytes: number): void {
    this.#bytes += bodyBytes + ROW_OVERHEAD_BYTES;
    this.#update();
  }

  #update(): void {
    const ceiling = this.#limits.storageCeilingBytes;
    const wasFull = this.#full;
    this.#full = this.#bytes >= ceiling;
    if (this.#full && !wasFull) this.#log("error", "storage_ceiling_reached", "new messages refused (conversation_storage_full) until the archive to D1 catches up");
    else if (!this.#full && wasFull) this.#log("warn", "storage_ceiling_cleared", "new messages accepted again");
    else if (!this.#full && this.#bytes >= ceiling * STORAGE_WARN_RATIO && Date.now() - this.#warnedAt >= WARN_EVERY_MS) {
      this.#warnedAt = Date.now();
      this.#log("warn", "storage_ceiling_warning", "is the D1 archive failing? at the ceiling new messages are refused");
    }
  }

  #log(level: "warn" | "error", at: string, action: string): void {
    const ceiling = this.#limits.storageCeilingBytes;
    const line = { at, ...this.#logContext(), bytes: this.#bytes, ceilingBytes: ceiling, percent: Math.round((this.#bytes / ceiling) * 100), action };
    console[level](JSON.stringify(line));
  }
}
