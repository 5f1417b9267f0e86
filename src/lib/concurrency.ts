// Bounded concurrency: run an async function over items with at most `limit` in flight.

/** Run `fn` over `items`, at most `limit` at a time, in order of start. Rejects if any call rejects. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
