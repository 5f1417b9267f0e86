// A token bucket: `rate` tokens per second, holding at most `burst`. In memory only: it lives in the
// object that owns the hot path, so limiting costs no storage write and no call. Losing it on eviction
// only hands a client one fresh burst.
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  /** Take `n` tokens for `key` if available. Returns how many were granted and, if short, when the next one arrives. */
  take(key: string, n: number, now = Date.now()): { granted: number; retryAfterMs: number } {
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    const granted = Math.min(n, Math.floor(b.tokens));
    b.tokens -= granted;
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) this.evictFull(now);
    const retryAfterMs = granted < n ? Math.ceil(((1 - (b.tokens % 1)) / this.rate) * 1000) : 0;
    return { granted, retryAfterMs };
  }

  private evictFull(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(k);
  }
}
