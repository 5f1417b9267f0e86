import { performance } from "node:perf_hooks";

/** Poll `cond` every few ms until true; throws with `what` after the timeout. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Like waitFor but returns false instead of throwing. */
export async function settle(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  try {
    await waitFor(cond, timeoutMs, "");
    return true;
  } catch {
    return false;
  }
}

export async function sleepUntil(t: number): Promise<void> {
  const d = t - performance.now();
  if (d > 1) await new Promise((r) => setTimeout(r, d));
}
