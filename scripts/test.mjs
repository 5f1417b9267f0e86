#!/usr/bin/env node
// `npm test`: every suite in order, with timings. Stops at the first failure.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" };
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const steps = [
  ["typecheck", ["run", "typecheck"]],
  ["build:web", ["run", "build:web"], () => existsSync(join(root, "web", "vite.config.ts"))],
  ["test:workerd", ["run", "test:workerd"]],
  ["test:client", ["run", "test:client"], () => existsSync(join(root, "client", "vitest.config.ts"))],
  ["test:e2e", ["run", "test:e2e"]],
  [
    "test:browser",
    ["run", "test:browser"],
    () => {
      if (!existsSync(join(root, "e2e", "browser", "vitest.config.ts"))) return false;
      if (existsSync(CHROMIUM)) return true;
      console.log(`\n!! SKIPPED test:browser: Chromium not found at ${CHROMIUM}.`);
      console.log("!! Install it with `apt-get install -y chromium` (or set CHROMIUM_PATH) to run the browser tests.\n");
      return false;
    },
  ],
  ["build:check", ["run", "build:check"]],
];

const results = [];
for (const [name, args, enabled] of steps) {
  if (enabled && !enabled()) {
    results.push([name, "skipped", 0]);
    continue;
  }
  console.log(`\n=== ${name}`);
  const started = Date.now();
  const r = spawnSync("npm", args, { cwd: root, stdio: "inherit", env });
  const secs = (Date.now() - started) / 1000;
  results.push([name, r.status === 0 ? "ok" : "FAILED", secs]);
  if (r.status !== 0) break;
}
console.log("\n=== summary");
for (const [name, status, secs] of results) console.log(`${status.padEnd(8)} ${name.padEnd(14)} ${secs.toFixed(1)}s`);
process.exit(results.some(([, s]) => s === "FAILED") ? 1 : 0);
