// Small helpers for Durable Object SQLite storage: a forward-only migration runner and a
// one-alarm scheduler. Both are synchronous so they never open the input gate.

/** Apply every migration newer than the stored version, each in its own transaction. */
export function migrate(storage: DurableObjectStorage, migrations: readonly string[]): void {
  const sql = storage.sql;
  sql.exec("CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
  const row = sql.exec<{ v: number | null }>("SELECT max(version) AS v FROM _migrations").one();
  const current = row.v ?? 0;
  for (let version = current + 1; version <= migrations.length; version++) {
    storage.transactionSync(() => {
      sql.exec(migrations[version - 1]!);
      sql.exec("INSERT INTO _migrations (version, applied_at) VALUES (?, ?)", version, Date.now());
    });
  }
}

export const SCHEDULE_TABLE_SQL =
  "CREATE TABLE IF NOT EXISTS _schedule (kind TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID";

/**
 * A Durable Object has ONE alarm; several jobs need waking (archive flush, D1 outbox, sweeps...).
 * The `_schedule` table holds the wanted time per job and the alarm is kept at the earliest one.
 * The table is the source of truth, so the cache below is rebuilt from it after every wake.
 */
export class Scheduler<Kind extends string> {
  private readonly wanted = new Map<Kind, number>();
  private alarmAt: number | null = null;

  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec(SCHEDULE_TABLE_SQL);
    for (const r of storage.sql.exec<{ kind: Kind; at: number }>("SELECT kind, at FROM _schedule")) {
      this.wanted.set(r.kind, r.at);
    }
    this.alarmAt = this.earliest();
  }

  has(kind: Kind): boolean {
    return this.wanted.has(kind);
  }

  /** Make sure `kind` runs no later than `at` (an earlier existing time is kept). Cheap when already scheduled. */
  ensure(kind: Kind, at: number): void {
    const current = this.wanted.get(kind);
    if (current !== undefined && current <= at) return;
    this.set(kind, at);
  }

  /** Run `kind` at exactly `at`, replacing any earlier wish (used for backoff). */
  set(kind: Kind, at: number): void {
    this.wanted.set(kind, at);
    this.storage.sql.exec("INSERT OR REPLACE INTO _schedule (kind, at) VALUES (?, ?)", kind, at);
    this.sync();
  }

  clear(kind: Kind): void {
    if (!this.wanted.delete(kind)) return;
    this.storage.sql.exec("DELETE FROM _schedule WHERE kind = ?", kind);
    this.sync();
  }

  /** Jobs whose time has come; the caller clears or reschedules each one. */
  due(now: number): Kind[] {
    return [...this.wanted].filter(([, at]) => at <= now).map(([kind]) => kind);
  }

  /** Called at the start of alarm(): the fired alarm is gone, so re-arm from the table afterwards. */
  alarmFired(): void {
    this.alarmAt = null;
  }

  /** Re-arm after an alarm ran, whatever the handlers did. */
  rearm(): void {
    this.sync(true);
  }

  private earliest(): number | null {
    let min: number | null = null;
    for (const at of this.wanted.values()) if (min === null || at < min) min = at;
    return min;
  }

  private sync(force = false): void {
    const next = this.earliest();
    if (!force && next === this.alarmAt) return;
    this.alarmAt = next;
    // setAlarm/deleteAlarm are storage writes covered by the output gate: no await needed.
    if (next === null) void this.storage.deleteAlarm();
    else void this.storage.setAlarm(next);
  }
}
