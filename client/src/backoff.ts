// Reconnect delays: capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential
// Backoff And Jitter"). Full jitter spreads a crowd of clients that lost the same server (a deploy
// disconnects every socket at once) evenly over the window instead of synchronising their retries.

export interface BackoffOptions {
  /** First window, ms. Default 500. */
  baseMs?: number;
  /** Largest window, ms. Default 30 000. */
  capMs?: number;
  /** A connection that stays open this long resets the schedule. Default 10 000. */
  stableAfterMs?: number;
  /** Injectable for tests; must return [0, 1). */
  random?: () => number;
}

/** The delay before retry number `attempt` (0-based): uniform in [0, min(cap, base * 2^attempt)]. */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 500;
  const cap = options.capMs ?? 30_000;
  const random = options.random ?? Math.random;
  // 2^attempt overflows to Infinity long after it passed the cap; Math.min handles both.
  const window = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * window);
}

/** Tracks the attempt counter; call `opened()` when a connection opens and `delay()` after it drops. */
export class Backoff {
  private attempt = 0;
  private openedAt: number | null = null;

  constructor(
    private readonly options: BackoffOptions = {},
    private readonly now: () => number = Date.now,
  ) {}

  opened(): void {
    this.openedAt = this.now();
  }

  /** Delay before the next attempt. A drop after a stable period starts the schedule again. */
  delay(): number {
    if (this.openedAt !== null && this.now() - this.openedAt >= (this.options.stableAfterMs ?? 10_000)) this.attempt = 0;
    this.openedAt = null;
    return backoffDelay(this.attempt++, this.options);
  }

  reset(): void {
    this.attempt = 0;
    this.openedAt = null;
  }

  get attempts(): number {
    return this.attempt;
  }
}
