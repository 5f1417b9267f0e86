// The D1 databases bound in wrangler.toml (the primary DB and the archive shards), and applying their migrations
// to local state. Used by `npm run dev`, the end-to-end servers, the benchmarks and `npm run verify`.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

/** Binding names of every [[d1_databases]] entry in `<root>/wrangler.toml`, in file order. */
export function d1Bindings(root) {
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  return toml
    .split(/^\[\[/m)
    .filter((block) => block.startsWith("d1_databases]]"))
    .map((block) => /^binding\s*=\s*"([^"]+)"/m.exec(block)?.[1])
    .filter((name) => name !== undefined);
}

/** Apply every database's migrations to local state (`persistTo`, or wrangler's default .wrangler/state), side by side. */
export async function migrateLocalD1(root, persistTo) {
  const wrangler = join(root, "node_modules", ".bin", "wrangler");
  const env = { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" };
  await Promise.all(
    d1Bindings(root).map((binding) =>
      promisify(execFile)(wrangler, ["d1", "migrations", "apply", binding, "--local", ...(persistTo ? ["--persist-to", persistTo] : [])], { cwd: root, env }).catch((err) => {
        throw new Error(`migrating local D1 ${binding} failed: ${err.stderr || err.message}`);
      }),
    ),
  );
}
