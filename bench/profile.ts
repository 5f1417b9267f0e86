// Hot-path profiling helper (see bench/README.md "Where the time goes"). Starts one edgechat runtime,
// prints its workerd pid, and drives one workload for a while so `perf`/`strace` can be attached:
//   tsx bench/profile.ts single   [seconds]   10 senders, one message per frame (scenario 2)
//   tsx bench/profile.ts batched  [seconds]   10 senders, send_batch of 50
//   tsx bench/profile.ts paced    [seconds]   1:1 at 100 msg/s (scenario 1)
// Options: --ref <git ref>; env PROFILE_HOOK="cmd {pid} {seconds}" runs cmd alongside the load.
import { spawn } from "node:child_process";
import "./lib/env.ts";
import { createDirect, createGroup, createUsers, conversationWsUrl } from "./lib/client.ts";
import { paramsFor } from "./lib/params.ts";
import { bundleWorker, startEdgechat } from "./lib/workerd.ts";
import { drive } from "./scenarios/s2-throughput.ts";
import { pacedPair } from "./scenarios/s1-latency.ts";

const argv = process.argv.slice(2);
const workload = argv[0] ?? "single";
const seconds = Number(argv[1] ?? "10");
const refAt = argv.indexOf("--ref");
const bundle = bundleWorker(refAt >= 0 ? argv[refAt + 1] : undefined);
const p = paramsFor("full");
const edge = await startEdgechat({ bundle, vars: p.serverVars });
try {
  const users = await createUsers(edge.url, 10, "prof");
  console.log(JSON.stringify({ pid: edge.pid, workload, seconds }));
  const hook = process.env.PROFILE_HOOK;
  const child = hook ? spawn("sh", ["-c", hook.replaceAll("{pid}", String(edge.pid)).replaceAll("{seconds}", String(seconds))], { stdio: "inherit" }) : null;
  const childExit = child ? new Promise((r) => child.once("exit", r)) : null;
  let result: unknown;
  if (workload === "paced") {
    const dm = await createDirect(edge.url, users[0]!, users[1]!);
    result = await pacedPair([conversationWsUrl(edge.wsUrl, dm, users[0]!.token), conversationWsUrl(edge.wsUrl, dm, users[1]!.token)], 100, seconds * 100, 0, p.bodyBytes);
  } else {
    const id = await createGroup(edge.url, users[0]!, users);
    const urls = users.map((u) => conversationWsUrl(edge.wsUrl, id, u.token));
    const batched = workload === "batched";
    result = await drive(urls, batched ? p.s2.batchSize : 1, batched ? p.s2.batchWindowPerSender : p.s2.windowPerSender, 0, seconds, p.bodyBytes);
  }
  if (childExit) await childExit;
  console.log(JSON.stringify(result));
} finally {
  await edge.stop();
  bundle.cleanup();
}
