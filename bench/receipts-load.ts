// Scenario 3's fan-out with members that report delivery as the SDK does (one `receipt` frame per socket per
// burst), edgechat only: the relays have no receipts. Each cell runs three ways: silent members; members that
// report 150 ms after a burst (SDKs before session 12, and every size up to 100 members); and members that report
// 1.5-4.5 s after it (the SDK above 100 members since).
//
//   npx tsx bench/receipts-load.ts [git ref]   (default: this checkout; a ref benches that commit, to compare builds)
//   SIZES=1000,5000 MESSAGES=20 OUT=bench/results/... to change the cells or keep the JSON.
import "./lib/env.ts";
import { writeFileSync } from "node:fs";
import { createUsers, conversationWsUrl } from "./lib/client.ts";
import { log } from "./lib/env.ts";
import { paramsFor } from "./lib/params.ts";
import { createSettledRoom } from "./lib/systems.ts";
import { bundleWorker, startEdgechat } from "./lib/workerd.ts";
import { fanout, type FanoutResult } from "./scenarios/s3-fanout.ts";
import { LARGE_DELIVERY_SPREAD_MS, largeDeliveryDebounceMs, RECEIPT_DEBOUNCE_MS } from "../client/src/receipts.ts";

const ref = process.argv[2];
const sizes = (process.env.SIZES ?? "1000,5000").split(",").map(Number);
const p = paramsFor("full");
const messages = Number(process.env.MESSAGES ?? p.s3.messages);
const bundle = bundleWorker(ref);
const edge = await startEdgechat({ bundle, vars: p.serverVars });
const users = await createUsers(edge.url, Math.max(...sizes), "rl");
const results: { size: number; mode: string; result: FanoutResult }[] = [];
try {
  for (const size of sizes) {
    const modes: [string, (() => number) | undefined][] = [
      ["silent", undefined],
      [`reporting delivery ${RECEIPT_DEBOUNCE_MS} ms after a burst`, () => RECEIPT_DEBOUNCE_MS],
      [`reporting delivery ${LARGE_DELIVERY_SPREAD_MS.min}-${LARGE_DELIVERY_SPREAD_MS.max} ms after a burst`, largeDeliveryDebounceMs],
    ];
    for (const [mode, reportMs] of modes) {
      const members = users.slice(0, size);
      const id = await createSettledRoom(edge, members, { direct: false, tiny: false });
      const urls = members.map((u) => conversationWsUrl(edge.wsUrl, id, u.token, 0));
      const r = await fanout(urls, messages, p.s3.warmup, p.s3.gapMs, p.bodyBytes, reportMs);
      log(
        `${size} members, ${mode}: median ${r.delivery.p50} ms p99 ${r.delivery.p99} ms, ` +
          `${r.delivered}/${r.expected}${reportMs === undefined ? "" : `, receipts frames received ${r.receiptFrames}`}`,
      );
      results.push({ size, mode, result: r });
    }
  }
} finally {
  await edge.stop();
  bundle.cleanup();
}
if (process.env.OUT) writeFileSync(process.env.OUT, JSON.stringify({ build: bundle.source, at: new Date().toISOString(), results }, null, 2));
const bad = results.filter((x) => x.result.delivered !== x.result.expected || x.result.error);
process.exit(bad.length ? 1 : 0);
