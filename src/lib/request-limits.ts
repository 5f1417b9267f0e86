// Budgets kept by Workers Rate Limiting bindings (wrangler.toml [[ratelimits]]): fixed windows, counted per
// Cloudflare location. A request over a budget is refused with 429 rate_limited and Retry-After.
import { AppError } from "./errors";

/**
 * The binding cannot tell how far into its window it is, so the wait is one whole period: after it, the
 * window has certainly turned over. Every binding here uses a 60 s period (the longest the platform allows).
 */
export const LIMIT_PERIOD_MS = 60_000;

/** Take one unit of `key`'s budget in `limiter`, or refuse the request. */
export async function spend(limiter: RateLimit, key: string, message: string): Promise<void> {
  const { success } = await limiter.limit({ key });
  if (!success) throw new AppError("rate_limited", message, { retryAfterMs: LIMIT_PERIOD_MS });
}
