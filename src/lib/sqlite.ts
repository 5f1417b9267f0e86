// The forward-only migration runner for Durable Object SQLite storage. Synchronous, so it never opens
// the input gate. (Scheduling over the one alarm is objects/shared/jobs.ts.)

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
