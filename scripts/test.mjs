#!/usr/bin/env node
// `npm test`: every suite in order, with timings. Stops at the first failure.
//
// Each step has a deadline, so a stalled run fails in minutes with a clear message instead of holding CI
// for an hour. Nothing is retried. (The fault tests used to restart every object with
// abortAllDurableObjects(), which with the pinned @cloudflare/vitest-pool-workers 0.15.1 could hang the run
// at teardown after its tests passed; they now restart only the object under test, see test/helpers.ts.)
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" };
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const MIN = 60_000;

const steps = [
  { name: "build:web", script: "build:web", deadline: 3 * MIN, enabled: () => existsSync(join(root, "web", "vite.config.ts")) },
  // One workerd process runs its test files on one core (~96% CPU over the run), so the workerd suite runs as two
  // halves side by side, each with its own workerd and its own storage: ~185 s for both instead of ~290 s for one.
  [
    { name: "test:workerd 1/2", script: "test:workerd", args: ["--shard=1/2"], deadline: 10 * MIN },
    { name: "test:workerd 2/2", script: "test:workerd", args: ["--shard=2/2"], deadline: 10 * MIN },
  ],
  // The client and browser suites wait mostly on their own local servers and sockets, not the CPU: they run side
  // by side (their output is printed when each ends), with the type check and the deploy dry run, which take one
  // core. The CPU-heavy suites (workerd, e2e with its 3,000-member group and its timed reads) run alone.
  [
    { name: "typecheck", script: "typecheck", deadline: 5 * MIN },
    { name: "build:check", script: "build:check", deadline: 3 * MIN },
    { name: "test:client", script: "test:client", deadline: 5 * MIN, enabled: () => existsSync(join(root, "client", "vitest.config.ts")) },
    {
      name: "test:browser",
      script: "test:browser",
      deadline: 8 * MIN,
      enabled: () => {
        if (!existsSync(join(root, "e2e", "browser", "vitest.config.ts"))) return false;
        if (existsSync(CHROMIUM)) return true;
        console.log(`\n!! SKIPPED test:browser: Chromium not found at ${CHROMIUM}.`);
        console.log("!! Install it with `apt-get install -y chromium` (or set CHROMIUM_PATH) to run the browser tests.\n");
        return false;
      },
    },
  ],
  { name: "test:e2e", script: "test:e2e", deadline: 10 * MIN },
];

/**
 * Run `npm run <script>` in its own process group; kill the whole group (workerd included) at the deadline.
 * `quiet`: collect its output and print it in one piece when it ends (for steps that run side by side).
 */
function run(script, args, deadline, quiet = false) {
  return new Promise((resolve) => {
    const child = spawn("npm", ["run", script, ...(args.length ? ["--", ...args] : [])], { cwd: root, stdio: ["ignore", "pipe", "pipe"], env, detached: true });
    const output = [];
    for (const stream of [child.stdout, child.stderr]) {
      stream.on("data", (chunk) => {
        output.push(chunk);
        if (!quiet) (stream === child.stdout ? process.stdout : process.stderr).write(chunk);
      });
    }
    const text = () => Buffer.concat(output).toString();
    const print = () => {
      if (quiet) process.stdout.write(`\n=== ${[script, ...args].join(" ")} (output)\n${text()}`);
    };
    const timer = setTimeout(() => {
      console.log(`\n!! ${[script, ...args].join(" ")} passed its deadline of ${deadline / MIN} min: stopping it.`);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
      print();
      resolve({ status: "stalled", output: text() });
    }, deadline);
    child.on("close", (code) => {
      clearTimeout(timer);
      print();
      resolve({ status: code === 0 ? "ok" : "FAILED", output: text() });
    });
  });
}

const results = [];
const failures = [];
for (const entry of steps) {
  const group = (Array.isArray(entry) ? entry : [entry]).filter((step) => {
    if (!step.enabled || step.enabled()) return true;
    results.push([step.name, "skipped", 0]);
    return false;
  });
  if (group.length === 0) continue;
  console.log(`\n=== ${group.map((s) => s.name).join(" + ")}`);
  const statuses = await Promise.all(
    group.map(async (step) => {
      const started = Date.now();
      const { status, output } = await run(step.script, step.args ?? [], step.deadline, group.length > 1);
      results.push([step.name, status, (Date.now() - started) / 1000]);
      if (status !== "ok") failures.push([step.name, status, output]);
      return status;
    }),
  );
  if (statuses.some((s) => s !== "ok")) break;
}
console.log("\n=== summary");
for (const [name, status, secs] of results) console.log(`${status.padEnd(8)} ${name.padEnd(16)} ${secs.toFixed(1)}s`);
// Steps that run side by side print their output when each ends, so a failure can sit far above the end of the log,
// and CI may keep only the end. Repeat, last, what failed and why.
for (const [name, status, output] of failures) {
  console.log(`\n=== why ${name} ${status === "stalled" ? "stalled" : "failed"}`);
  console.log(failureLines(output).join("\n"));
}

/** The lines that name a failure in a step's output: vitest's failed tests and their first error lines, else its end. */
function failureLines(output, max = 24) {
  const lines = output.replace(/\x1b\[[0-9;]*m/g, "").split("\n");
  const picked = lines.filter((line) => /^\s*(FAIL|×|✗)\s|^\s*(\w*Error|AssertionError)\b|\bError: /.test(line));
  const unique = [...new Set(picked.map((line) => line.trimEnd()))];
  return (unique.length > 0 ? unique : lines.filter((line) => line.trim() !== "").slice(-max)).slice(0, max);
}
process.exit(results.some(([, s]) => s !== "ok" && s !== "skipped") ? 1 : 0);
