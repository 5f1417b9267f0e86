// Background jobs of a Durable Object over its ONE alarm. Owns the `_schedule` table.
//
// Each job is a named async function that returns when it wants to run next ("done" = only when asked
// again). Due jobs run side by side, each in its own try: a slow or failing D1 archive never delays
// fan-out or presence. A throw is a failure: logged with the job's name, retried with capped exponential
// backoff (lib/backoff.ts), and never thrown out of alarm(). runNow() lets an RPC run a job at once
// (e.g. flush the D1 outbox after a membership change) through the same path; a job never runs twice
// at the same time.
import { backoffDelay } from "../../lib/backoff";

export type JobOutcome = "done" | { at: number };

const SCHEDULE_TABLE_SQL = "CREATE TABLE IF NOT EXISTS _schedule (kind TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID";
/** D1 and RPC failures: 250 ms, 500 ms, 1 s ... capped at a minute, +-20%. */
const RETRY = { base: 250, cap: 60_000, jitter: 0.2 };

export class JobRunner<Kind extends string> {
  readonly #storage: DurableObjectStorage;
  /** Wanted run time per job: a cache of `_schedule`, which is the truth (rebuilt after every wake). */
  readonly #wanted = new Map<Kind, number>();
  readonly #jobs = new Map<Kind, () => Promise<JobOutcome>>();
  readonly #failures = new Map<Kind, number>();
  readonly #running = new Map<Kind, Promise<void>>();
  /** Wishes made while the job was running: the run's outcome must not erase them. */
  readonly #rerun = new Map<Kind, number>();
  /** Fields added to every failure log line (e.g. the conversation id). */
  readonly #logContext: () => Record<string, unknown>;
  #alarmAt: number | null;

  constructor(storage: DurableObjectStorage, logContext: () => Record<string, unknown> = () => ({})) {
    this.#storage = storage;
    this.#logContext = logContext;
    storage.sql.exec(SCHEDULE_TABLE_SQL);
    for (const r of storage.sql.exec<{ kind: Kind; at: number }>("SELECT kind, at FROM _schedule")) this.#wanted.set(r.kind, r.at);
    this.#alarmAt = this.#earliest();
  }

  define(kind: Kind, run: () => Promise<JobOutcome>): void {
    this.#jobs.set(kind, run);
  }

  has(kind: Kind): boolean {
    return this.#wanted.has(kind);
  }

  /** When `kind` is wanted (during its run: when this run was due). */
  dueAt(kind: Kind): number | undefined {
    return this.#wanted.get(kind);
  }

  /** Make sure `kind` runs no later than `at` (an earlier wish is kept). Costs nothing when already scheduled earlier. */
  ensure(kind: Kind, at: number): void {
    if (this.#running.has(kind)) this.#rerun.set(kind, Math.min(at, this.#rerun.get(kind) ?? Infinity));
    const current = this.#wanted.get(kind);
    if (current !== undefined && current <= at) return;
    this.#set(kind, at);
  }

  /** Run `kind` now (or join the run in progress). Never throws: failures back off like the alarm's. */
  runNow(kind: Kind): Promise<void> {
    let running = this.#running.get(kind);
    if (!running) {
      running = this.#run(kind)
        // Only bookkeeping can throw here (storage of an object being reset): never an unhandled rejection.
        .catch((err) => console.warn(JSON.stringify({ at: kind, ...this.#logContext(), error: String(err) })))
        .finally(() => this.#running.delete(kind));
      this.#running.set(kind, running);
    }
    return running;
  }

  /** The object's storage was deleted (an erasure, protocol 17): forget every wish and the alarm; the table starts empty. */
  async reset(): Promise<void> {
    this.#wanted.clear();
    this.#rerun.clear();
    this.#failures.clear();
    this.#storage.sql.exec(SCHEDULE_TABLE_SQL);
    this.#alarmAt = null;
    await this.#storage.deleteAlarm();
  }

  /** The object's alarm(): run every due job, each on its own, then re-arm for the earliest wish. */
  async alarm(): Promise<void> {
    this.#alarmAt = null; // the alarm that fired is gone
    try {
      const now = Date.now();
      const due = [...this.#wanted].filter(([, at]) => at <= now).map(([kind]) => kind);
      await Promise.all(due.map((kind) => this.runNow(kind)));
    } finally {
      // Forced, even when a job already armed this time during the run: without it, a 3,000-member group's push
      // fan-out stalled locally (e2e/large-group-3000.test.ts timed out), so an alarm set while the handler runs
      // is not to be relied on after it returns. This costs one more billed setAlarm per run (docs/scaling.md 10).
      this.#sync(true);
    }
  }

  async #run(kind: Kind): Promise<void> {
    const job = this.#jobs.get(kind);
    if (!job) return this.#clear(kind); // a job this build no longer has
    let outcome: JobOutcome;
    try {
      outcome = await job();
    } catch (err) {
      // Nothing is dropped: the job's state stays where it was and the job runs again later.
      const failures = (this.#failures.get(kind) ?? 0) + 1;
      this.#failures.set(kind, failures);
      const delay = backoffDelay(failures, RETRY);
      this.#rerun.delete(kind); // the retry below runs soon enough and sees the new work
      console.warn(JSON.stringify({ at: kind, ...this.#logContext(), error: String(err), retryInMs: delay }));
      this.#set(kind, Date.now() + delay);
      return;
    }
    this.#failures.delete(kind);
    const rerun = this.#rerun.get(kind);
    this.#rerun.delete(kind);
    const at = Math.min(outcome === "done" ? Infinity : outcome.at, rerun ?? Infinity);
    if (at === Infinity) this.#clear(kind);
    else this.#set(kind, at);
  }

  #set(kind: Kind, at: number): void {
    this.#wanted.set(kind, at);
    this.#storage.sql.exec("INSERT OR REPLACE INTO _schedule (kind, at) VALUES (?, ?)", kind, at);
    this.#sync();
  }

  #clear(kind: Kind): void {
    if (!this.#wanted.delete(kind)) return;
    this.#storage.sql.exec("DELETE FROM _schedule WHERE kind = ?", kind);
    this.#sync();
  }

  #earliest(): number | null {
    let min: number | null = null;
    for (const at of this.#wanted.values()) if (min === null || at < min) min = at;
    return min;
  }

  #sync(force = false): void {
    const next = this.#earliest();
    if (!force && next === this.#alarmAt) return;
    this.#alarmAt = next;
    // setAlarm/deleteAlarm are storage writes covered by the output gate: no await needed.
    if (next === null) void this.#storage.deleteAlarm();
    else void this.#storage.setAlarm(next);
  }
}
