// The receipt reporter's pacing (client/src/receipts.ts): one frame per burst; in conversations above 100 members a
// delivery alone waits LARGE_DELIVERY_DEBOUNCE_MS (every member's client reports it, no one is told of it), while a
// read still goes out after RECEIPT_DEBOUNCE_MS and carries the waiting delivery with it.
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { LARGE_DELIVERY_DEBOUNCE_MS, RECEIPT_DEBOUNCE_MS, ReceiptReporter } from "../src/receipts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function reporter(large: boolean) {
  const sent: unknown[] = [];
  const r = new ReceiptReporter(
    (frame) => sent.push(frame) > 0,
    () => (large ? LARGE_DELIVERY_DEBOUNCE_MS : RECEIPT_DEBOUNCE_MS),
  );
  return { r, sent };
}

it("small conversations: a burst of deliveries is one frame after RECEIPT_DEBOUNCE_MS", () => {
  const { r, sent } = reporter(false);
  for (let seq = 1; seq <= 5; seq++) r.delivered(seq);
  vi.advanceTimersByTime(RECEIPT_DEBOUNCE_MS);
  expect(sent).toEqual([{ type: "receipt", delivered: 5 }]);
});

it("large conversations: deliveries wait LARGE_DELIVERY_DEBOUNCE_MS; a read goes out at once with them", () => {
  const { r, sent } = reporter(true);
  r.delivered(1);
  vi.advanceTimersByTime(RECEIPT_DEBOUNCE_MS * 2);
  r.delivered(2);
  expect(sent).toEqual([]);
  vi.advanceTimersByTime(LARGE_DELIVERY_DEBOUNCE_MS - RECEIPT_DEBOUNCE_MS * 2);
  expect(sent).toEqual([{ type: "receipt", delivered: 2 }]);
  // A read while a delivery waits moves the frame earlier.
  r.delivered(3);
  vi.advanceTimersByTime(100);
  r.read(3);
  vi.advanceTimersByTime(RECEIPT_DEBOUNCE_MS);
  expect(sent).toEqual([{ type: "receipt", delivered: 2 }, { type: "receipt", delivered: 3, read: 3 }]);
  vi.advanceTimersByTime(LARGE_DELIVERY_DEBOUNCE_MS);
  expect(sent).toHaveLength(2);
});
