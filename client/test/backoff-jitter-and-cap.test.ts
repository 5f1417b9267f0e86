import { describe, expect, it } from "vitest";
import { Backoff, backoffDelay } from "../src/index";

describe("reconnect backoff", () => {
  it("grows exponentially up to the cap (upper bound of the window)", () => {
    const top = () => 0.999999;
    const windows = Array.from({ length: 12 }, (_, i) => backoffDelay(i, { baseMs: 500, capMs: 30_000, random: top }));
    expect(windows.slice(0, 6)).toEqual([499, 999, 1999, 3999, 7999, 15999]);
    expect(windows.slice(6).every((d) => d === 29999)).toBe(true);
    // Absurd attempt numbers stay capped (no Infinity / NaN).
    expect(backoffDelay(10_000, { capMs: 30_000, random: top })).toBe(29999);
  });

  it("has full jitter: delays spread over [0, window] rather than clustering", () => {
    const samples = Array.from({ length: 2000 }, () => backoffDelay(8, { baseMs: 500, capMs: 30_000 }));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...samples)).toBeLessThan(30_000);
    // Uniform over [0, 30000): roughly a quarter in each quarter of the window.
    for (let q = 0; q < 4; q++) {
      const n = samples.filter((d) => d >= q * 7500 && d < (q + 1) * 7500).length;
      expect(n).toBeGreaterThan(350);
      expect(n).toBeLessThan(650);
    }
    expect(new Set(samples).size).toBeGreaterThan(1000);
    expect(backoffDelay(3, { random: () => 0 })).toBe(0);
  });

  it("resets after a stable period, not after a short-lived connection", () => {
    let now = 0;
    const b = new Backoff({ baseMs: 100, capMs: 10_000, stableAfterMs: 5_000, random: () => 0.999 }, () => now);
    expect([b.delay(), b.delay(), b.delay()]).toEqual([99, 199, 399]);
    b.opened();
    now += 1_000; // dropped again quickly: keep backing off
    expect(b.delay()).toBe(799);
    b.opened();
    now += 6_000; // stayed up: start over
    expect(b.delay()).toBe(99);
  });
});
