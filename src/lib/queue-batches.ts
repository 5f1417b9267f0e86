// Cloudflare Queues limits, and packing by size: a message body may be at most 128 KB and one
// sendBatch at most 256 KB and 100 messages. A batch over the limit fails as a whole (and a job that
// retried it would fail forever), so every producer sizes what it sends here, by bytes, with margin for
// the per-message overhead the platform adds.

/** Largest JSON body we put in one queue message (the limit is 128 KB). */
export const MAX_QUEUE_MESSAGE_BYTES = 100_000;
/** Largest sum of bodies we put in one sendBatch (the limit is 256 KB). */
export const MAX_QUEUE_BATCH_BYTES = 200_000;
/** Most messages in one sendBatch (the platform's limit). */
export const MAX_QUEUE_BATCH_MESSAGES = 100;

const encoder = new TextEncoder();

export function jsonBytes(value: unknown): number {
  return encoder.encode(JSON.stringify(value)).byteLength;
}

/**
 * Split `items` into the fewest consecutive chunks such that `wrap(chunk)` serialises to at most
 * `maxBytes` (and holds at most `maxItems`). Sizes are measured per item, so a chunk is built in one pass; an item that alone is too
 * large throws (a caller bug: no queue would take it).
 */
export function chunkBySize<T, B>(items: T[], wrap: (chunk: T[]) => B, options: { maxBytes?: number; maxItems?: number } = {}): B[] {
  const maxBytes = options.maxBytes ?? MAX_QUEUE_MESSAGE_BYTES;
  const maxItems = options.maxItems ?? Infinity;
  const base = jsonBytes(wrap([]));
  const out: B[] = [];
  let chunk: T[] = [];
  let size = base;
  for (const item of items) {
    const bytes = jsonBytes(item) + 1; // the comma
    if (base + bytes > maxBytes) throw new Error(`queue item of ${bytes} bytes does not fit a ${maxBytes}-byte message`);
    if (chunk.length > 0 && (size + bytes > maxBytes || chunk.length >= maxItems)) {
      out.push(wrap(chunk));
      chunk = [];
      size = base;
    }
    chunk.push(item);
    size += bytes;
  }
  if (chunk.length > 0) out.push(wrap(chunk));
  return out;
}

/** Send every body, in as few sendBatch calls as the limits allow (by count and by bytes). */
export async function sendAll<B>(queue: Queue<B>, bodies: B[]): Promise<void> {
  let batch: MessageSendRequest<B>[] = [];
  let bytes = 0;
  for (const body of bodies) {
    const size = jsonBytes(body);
    if (size > MAX_QUEUE_MESSAGE_BYTES) throw new Error(`queue message of ${size} bytes is over ${MAX_QUEUE_MESSAGE_BYTES}`);
    if (batch.length > 0 && (batch.length >= MAX_QUEUE_BATCH_MESSAGES || bytes + size > MAX_QUEUE_BATCH_BYTES)) {
      await queue.sendBatch(batch);
      batch = [];
      bytes = 0;
    }
    batch.push({ body });
    bytes += size;
  }
  if (batch.length > 0) await queue.sendBatch(batch);
}
