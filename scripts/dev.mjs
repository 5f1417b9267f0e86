#!/usr/bin/env node
// `npm run dev`: dev secrets defaulted, web app built, local D1 migrated, then `wrangler dev` on :8787.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { migrateLocalD1 } from "./local-d1.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" };

function run(cmd, args, extraEnv = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...env, ...extraEnv } });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (!existsSync(join(root, ".dev.vars"))) {
  copyFileSync(join(root, ".dev.vars.example"), join(root, ".dev.vars"));
  console.log("dev: created .dev.vars from .dev.vars.example (development-only secrets)");
}
if (existsSync(join(root, "web", "vite.config.ts"))) run(bin("vite"), ["build", "--config", "web/vite.config.ts", "--logLevel", "warn"]);
// Every local D1 database (the primary and the archive shards), without a prompt: they only touch .wrangler/state.
try {
  await migrateLocalD1(root);
} catch (err) {
  console.error(String(err.message ?? err));
  process.exit(1);
}

const port = process.env.PORT ?? "8787";
const child = spawn(bin("wrangler"), ["dev", "--port", port, "--ip", process.env.HOST ?? "localhost", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
  env,
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code) => process.exit(code ?? 0));
