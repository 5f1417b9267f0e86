// `npm run verify` in CI: a small configuration against a real local server, zero violations expected.
// The checker's own ability to fail is checked first, on doctored logs and on a doctored copy of the
// real run's log: a consistency checker that cannot fail proves nothing.
import { expect, it } from "vitest";
import { check, formatReport, type ObservationLog } from "../scripts/verify/checker.ts";
import { PLANTS, cleanLog, selfTest } from "../scripts/verify/selftest.ts";
import { DEFAULTS, verify } from "../scripts/verify/run.ts";

it("the checker reports every planted fault and passes a clean log", () => {
  expect(check(cleanLog()).ok).toBe(true);
  for (const plant of PLANTS) {
    const log = cleanLog();
    plant.doctor(log);
    const report = check(log);
    expect(report.ok, plant.name).toBe(false);
    expect(report.counts[plant.expect], plant.name).toBeGreaterThan(0);
  }
  expect(selfTest().ok).toBe(true);
});

it("a few thousand messages under injected faults: nothing lost, duplicated, reordered or missing from the archive (D1 and R2)", async () => {
  const lines: string[] = [];
  const { report, workload } = await verify({ ...DEFAULTS, messages: 3000, clients: 8, conversations: 4, seed: 20261122, log: (l) => lines.push(l) });
  const text = formatReport(report);
  expect(report.violations, `${lines.join("\n")}\n${text}`).toEqual([]);
  expect(report.ok).toBe(true);
  // The run really exercised what it claims to: faults happened, resends were deduplicated, D1 was read.
  expect(report.summary.acked).toBeGreaterThan(2900);
  expect(report.summary.duplicateAcks).toBeGreaterThan(0);
  expect(workload.stats.reconnects).toBeGreaterThan(0);
  expect(report.summary.d1Checked).toBe(true);
  expect(report.summary.d1Rows).toBe(report.summary.stored);
  // Edits, deletes and reactions were mixed in, stored, and every member's applied stream matched its history.
  const { changeEntries, statesCompared, tombstones, edited, reacted } = report.summary;
  expect(changeEntries.edit * changeEntries.delete * changeEntries.reaction).toBeGreaterThan(0);
  expect(Math.min(tombstones, edited, reacted)).toBeGreaterThan(0);
  expect(statesCompared).toBeGreaterThan(report.summary.acked);
  expect(report.summary.meChecked).toBe(true);
  // The longest stream crossed the hot tail (50 locally) and the warm window (150), so history and backlogs were
  // read from D1 and R2, and the archive read directly had rows in R2 segments.
  expect(Math.max(...workload.log.conversations.map((c) => c.lastSeq))).toBeGreaterThan(Number(DEFAULTS.vars.WARM_MESSAGES) * 2);
  expect(report.summary.coldRows).toBeGreaterThan(0);

  // The same real log, doctored: one member misses one message and another member gets one twice.
  const doctored: ObservationLog = structuredClone(workload.log);
  const sessions = doctored.streams.flatMap((s) => s.sessions).filter((s) => s.messages.length > 2);
  sessions[0]!.messages.splice(1, 1);
  sessions[1]!.messages.push({ ...sessions[1]!.messages[0]! });
  const bad = check(doctored);
  expect(bad.counts.stream_gap).toBeGreaterThan(0);
  expect(bad.counts.stream_duplicate).toBeGreaterThan(0);
}, 120_000);
