// The D1 directory outbox (`d1_outbox`): writes to D1's conversations and conversation_members tables,
// queued in the same transaction as the change they mirror and applied to D1 in order by the
// "d1_outbox" job. D1 being down never fails a membership change; the directory catches up.
import type { D1Statement, HistoryArchive } from "../../db/archive";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import type { Job } from "./index";

/** Queued entries applied per D1 batch. */
const ENTRIES_PER_BATCH = 20;

export class DirectoryOutbox {
  readonly #sql: SqlStorage;
  readonly #jobs: JobRunner<Job>;
  readonly #d1: () => HistoryArchive;

  constructor(sql: SqlStorage, jobs: JobRunner<Job>, d1: () => HistoryArchive) {
    this.#sql = sql;
    this.#jobs = jobs;
    this.#d1 = d1;
    jobs.define("d1_outbox", () => this.#flush());
  }

  /** Queue statements (call inside the transaction that makes the change). Applied within a second. */
  enqueue(statements: D1Statement[]): void {
    if (statements.length === 0) return;
    this.#sql.exec("INSERT INTO d1_outbox (statements, created_at) VALUES (?, ?)", JSON.stringify(statements), Date.now());
    this.#jobs.ensure("d1_outbox", Date.now() + 1_000);
  }

  /** The newest queued entry's id (0: none). */
  newest(): number {
    return this.#sql.exec<{ id: number | null }>("SELECT max(id) AS id FROM d1_outbox").one().id ?? 0;
  }

  /** Entries queued at or before `id` that D1 does not have yet. */
  pendingUpTo(id: number): number {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM d1_outbox WHERE id <= ?", id).one().n;
  }

  /** Apply what is queued now (RPCs call this after a change, so the directory is current when they answer). */
  flush(): Promise<void> {
    return this.#jobs.runNow("d1_outbox");
  }

  async #flush(): Promise<JobOutcome> {
    for (;;) {
      const rows = this.#sql
        .exec<{ id: number; statements: string }>("SELECT id, statements FROM d1_outbox ORDER BY id LIMIT ?", ENTRIES_PER_BATCH)
        .toArray();
      if (rows.length === 0) return "done";
      await this.#d1().run(rows.flatMap((r) => JSON.parse(r.statements) as D1Statement[]));
      this.#sql.exec("DELETE FROM d1_outbox WHERE id <= ?", rows[rows.length - 1]!.id);
    }
  }
}
