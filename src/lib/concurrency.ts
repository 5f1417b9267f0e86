// Bounded concurrency: run an async function over items with at most `limit` in flight.

/** Run `fn` over `items`, at most `limit` at a time, in order of start. Rejects if any call rejects. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Background work that must not crowd out live traffic: run `fn` over `items` `chunk` at a time (side by side),
 * chunk after chunk, waiting `pauseMs` between chunks. The wait returns the object to its event loop, so messages
 * and live events that arrived meanwhile are handled before the next chunk starts, instead of after all of them
 * (a runtime only polls for new I/O when it has nothing left to run). Every item is run; like
 * Promise.allSettled, it never rejects.
 */
export async function pacedSettled<T, R>(
  items: readonly T[],
  options: { chunk: number; pauseMs: number },
  fn: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = [];
  for (let i = 0; i < items.length; i += options.chunk) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    // `async`: a call that throws at once is a rejected result like any other, not a rejection of the whole run.
    results.push(...(await Promise.allSettled(items.slice(i, i + options.chunk).map(async (item) => fn(item)))));
  }
  return results;
}
