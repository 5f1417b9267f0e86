// Proves the benchmark harness works (issue 6): runs bench/run.ts --tiny against a real local runtime
// and both relays, and checks that every scenario completed and every message was counted.
// It asserts nothing about speed: the benchmark is not a timed test.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { runBench } from "../bench/run.ts";

const out = mkdtempSync(join(tmpdir(), "edgechat-bench-tiny-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

it("bench --tiny runs every scenario and counts every message", async () => {
  process.env.BENCH_QUIET = "1";
  const r = await runBench(["--tiny", "--out", out]);
  expect(r.errors).toEqual({});
  expect(r.verification.problems).toEqual([]);
  expect(r.verification.ok).toBe(true);

  const s = r.scenarios;
  for (const sys of ["plain-relay", "durable-relay", "edgechat"] as const) {
    expect(s.s1?.[sys].delivered).toBe(s.s1?.[sys].sent);
    expect(s.s2?.single[sys].complete).toBe(true);
    expect(s.s2?.batched[sys].complete).toBe(true);
    for (const bySize of Object.values(s.s3 ?? {})) expect(bySize[sys].delivered).toBe(bySize[sys].expected);
  }
  // The runtime's floor (a bare relay object) runs beside them in scenarios 1 and 3, every message counted.
  expect(s.s1?.["bare-object"]?.delivered).toBe(s.s1?.["bare-object"]?.sent);
  expect(s.s1?.["bare-object"]?.sent).toBeGreaterThan(0);
  for (const bySize of Object.values(s.s3 ?? {})) expect(bySize["bare-object"]?.delivered).toBe(bySize["bare-object"]?.expected);
  expect(Object.values(s.s3 ?? {}).every((bySize) => (bySize["bare-object"]?.expected ?? 0) > 0)).toBe(true);
  expect(s.s4?.edgechat.sockets).toBe(r.params.s4.conversations * r.params.s4.socketsPerConversation);
  expect(s.s4?.latencyWhileOpen.delivered).toBe(s.s4?.latencyWhileOpen.sent);
  expect(s.s5?.complete).toBe(true);
  expect(s.s5?.received).toBe(r.params.s5.clients * r.params.s5.missed);
  // Scenario 6: pages from every tier, each checked (seqs and content); the tiers were verified in D1 and R2.
  expect(s.s6?.badPages).toBe(0);
  for (const page of Object.values(s.s6?.pages ?? {})) expect(page.count).toBe(r.params.s6.requests);
  expect(s.s6?.observed.segments).toBe(s.s6!.layout.cold[1] / r.params.s6.segmentMessages);
  expect(s.s6?.largeError).toBeUndefined();
  expect(s.s6?.large?.badPages).toBe(0);
  for (const pos of Object.values(s.s6?.large?.positions ?? {})) expect(pos.uncached.count).toBe(r.params.s6.large.pagesPerPosition);
  // Scenario 7 either ran or says plainly that the inbox is not in this build; never a made-up number.
  if (s.s7 && !s.s7.available) expect(s.s7.note).toMatch(/not available in this build/);
  else expect(s.s7?.available && s.s7.badResponses).toBe(0);
  // Scenario 8: every (recipient, message) is either heard or counted missed; frames well formed.
  expect(Object.keys(s.s8 ?? {}).length).toBe(r.params.s8.cases.length);
  for (const bySys of Object.values(s.s8 ?? {}))
    for (const sys of ["plain-relay", "durable-relay", "edgechat"] as const) {
      const x = bySys[sys];
      expect(x.error).toBeUndefined();
      expect([x.malformed, x.mismatched, x.unacked]).toEqual([0, 0, 0]);
      for (const b of Object.values(x.blocks)) expect(b.heard + b.missed).toBe(b.expected);
    }
  // Scenario 9: every attachment downloaded whole on every system; oversized uploads refused with 413.
  for (const c of s.s9?.cases ?? []) for (const sys of ["edgechat", "baseline", "bare-r2"] as const) expect(c[sys].mismatches).toBe(0);
  expect(s.s9?.cases.length).toBeGreaterThan(0);
  expect(s.s9?.refuse.answered).toBe(s.s9?.refuse.requests);
  expect(r.targets.length).toBeGreaterThan(0);
}, 120_000); // ~60 s quiet; scenario 9 moves tens of MB through the local R2
