// The one retry-delay rule of the service: exponential from `base`, capped at `cap`, with optional jitter
// so that many objects retrying the same outage do not retry in step. Units are the caller's (ms or s).

export interface BackoffOptions {
  /** Delay after the first failure. */
  base: number;
  /** No delay is longer than this. */
  cap: number;
  /** Spread as a fraction: 0.2 means +-20%. 0 gives exact, rounded delays. */
  jitter?: number;
}

/** Delay before the next try after the n-th consecutive failure (n >= 1): base, 2 x base, 4 x base ... cap. */
export function backoffDelay(failures: number, { base, cap, jitter = 0 }: BackoffOptions): number {
  const delay = Math.min(cap, base * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
  return Math.round(jitter === 0 ? delay : delay * (1 - jitter + Math.random() * 2 * jitter));
}
