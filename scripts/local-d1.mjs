// The D1 databases bound in wrangler.toml (the primary DB and the archive shards), and applying their migrations
// to local state. Used by `npm run dev`, the end-to-end servers, the benchmarks and `npm run verify`.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

/** Binding names of every [[d1_databases]] entry in `<root>/wrangler.toml`, in file order. */
export function d1Bindings(root) {
  return d1Blocks(root)
    .map((block) => /^binding\s*=\s*"([^"]+)"/m.exec(block)?.[1])
    .filter((name) => name !== undefined);
}

function d1Blocks(root) {
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  return toml.split(/^\[\[/m).filter((block) => block.startsWith("d1_databases]]"));
}

/**
 * Apply every database's migrations to local state (`persistTo`, or wrangler's default .wrangler/state). With
 * `persistTo` (a fresh directory for a test server), the migrated databases are made once per set of migrations
 * and copied: each `wrangler d1 migrations apply` is a process of a couple of seconds, and the suites start dozens
 * of servers. The copy is byte for byte what wrangler wrote.
 */
export async function migrateLocalD1(root, persistTo) {
  if (!persistTo) return applyAll(root, undefined);
  const template = join(tmpdir(), `edgechat-d1-${migrationsHash(root)}`);
  if (!existsSync(join(template, "done"))) {
    // Made aside and renamed into place, so a concurrent starter never copies a half-made template.
    const scratch = mkdtempSync(join(tmpdir(), "edgechat-d1-making-"));
    await applyAll(root, scratch);
    mkdirSync(join(scratch, "done"));
    try {
      renameSync(scratch, template);
    } catch {
      rmSync(scratch, { recursive: true, force: true }); // another starter made it first
    }
  }
  cpSync(join(template, "v3", "d1"), join(persistTo, "v3", "d1"), { recursive: true });
}

/** One database after the other: wrangler processes migrating side by side in one persist directory can fail with SQLITE_BUSY. */
async function applyAll(root, persistTo) {
  const wrangler = join(root, "node_modules", ".bin", "wrangler");
  const env = { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" };
  for (const binding of d1Bindings(root)) {
    await promisify(execFile)(wrangler, ["d1", "migrations", "apply", binding, "--local", ...(persistTo ? ["--persist-to", persistTo] : [])], { cwd: root, env }).catch((err) => {
      throw new Error(`migrating local D1 ${binding} failed: ${err.stderr || err.message}`);
    });
  }
}

/** Names the result of migrating: the wrangler version, the D1 bindings and every migration file they use. */
function migrationsHash(root) {
  const hash = createHash("sha256");
  const wranglerPackage = join(root, "node_modules", "wrangler", "package.json");
  if (existsSync(wranglerPackage)) hash.update(JSON.parse(readFileSync(wranglerPackage, "utf8")).version);
  for (const block of d1Blocks(root)) {
    hash.update(block);
    const dir = join(root, /^migrations_dir\s*=\s*"([^"]+)"/m.exec(block)?.[1] ?? "migrations");
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).sort()) hash.update(file).update(readFileSync(join(dir, file)));
  }
  return hash.digest("hex").slice(0, 16);
}
