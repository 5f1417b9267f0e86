// Servers on the runtime itself (Miniflare -> one workerd process), without wrangler dev's proxy:
// the proxy dies at ~3,300 connections, and it would add a hop to every frame we measure.
import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { BENCH_DIR, HOST, ROOT, log, sleep } from "./env.ts";
import { migrateLocalD1 } from "../../scripts/local-d1.mjs";

// At least 32 characters, or the admin API refuses to serve (src/routes/admin.ts).
export const ADMIN_SECRET = "bench-admin-secret-0123456789abcdef";
const AUTH_SECRET = "bench-auth-secret-0123456789abcdef0123456789";
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");

export interface RuntimeServer {
  url: string;
  wsUrl: string;
  mf: Miniflare;
  /** The workerd process serving this instance (for RSS). */
  pid: number;
  /** Where its storage is persisted (Durable Objects under v3/do, D1 under v3/d1, R2 under v3/r2). */
  persist: string;
  stop(): Promise<void>;
  /**
   * Stop this runtime and start a fresh process on the same persisted storage (new pid and port): a
   * measurement that must not inherit the heap of its setup (scenario 4) starts from here.
   */
  restart(): Promise<RuntimeServer>;
}

export interface Bundle {
  /** The bundled Worker (one ES module). */
  script: string;
  /** The wrangler.toml it was built from (bindings, vars, compatibility date). */
  config: string;
  /** What was built: "working tree" or the git ref and commit. */
  source: string;
  /** Remove the temporary bundle and snapshot directories. */
  cleanup(): void;
}

/**
 * Bundle the Worker exactly as `wrangler deploy` would (Miniflare does not bundle TypeScript), from a
 * snapshot copied to a temp dir: of a git ref (`git archive`, read-only), of a scratch tree (a path),
 * or of the working tree (tracked + untracked files). A snapshot keeps a run from being disturbed by
 * files being edited while it starts. A missing static-assets directory (built by `npm run build:web`)
 * is created empty in the snapshot: the API does not need it.
 */
export function bundleWorker(ref?: string): Bundle {
  const out = mkdtempSync(join(tmpdir(), "edgechat-bench-bundle-"));
  let cwd: string;
  let source: string;
  if (ref?.startsWith("/")) {
    // A scratch copy of the source tree (used to prototype server changes outside the repo).
    cwd = ref;
    source = `scratch tree ${ref}`;
  } else {
    cwd = mkdtempSync(join(tmpdir(), "edgechat-bench-src-"));
    if (ref) {
      const commit = execFileSync("git", ["rev-parse", "--verify", `${ref}^{commit}`], { cwd: ROOT, encoding: "utf8" }).trim();
      execFileSync("sh", ["-c", `git archive --format=tar ${commit} | tar -x -C "${cwd}"`], { cwd: ROOT, stdio: "pipe" });
      source = `${ref} (${commit.slice(0, 10)})`;
    } else {
      const head = execFileSync("git", ["rev-parse", "--short=10", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
      const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "migrations", "wrangler.toml"], { cwd: ROOT, encoding: "utf8" }).trim() !== "";
      const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: ROOT, maxBuffer: 64 << 20 })
        .toString("utf8")
        .split("\0")
        .filter((f) => f && !f.startsWith("node_modules/") && existsSync(join(ROOT, f)));
      for (const f of files) {
        mkdirSync(dirname(join(cwd, f)), { recursive: true });
        copyFileSync(join(ROOT, f), join(cwd, f));
      }
      source = `working tree (HEAD ${head}${dirty ? " + uncommitted changes in src/" : ""})`;
    }
    symlinkSync(join(ROOT, "node_modules"), join(cwd, "node_modules"));
  }
  const assets = /^\[assets\][^[]*?directory\s*=\s*"([^"]+)"/m.exec(readFileSync(join(cwd, "wrangler.toml"), "utf8"))?.[1];
  if (assets && !existsSync(join(cwd, assets))) {
    const existing = join(ROOT, assets);
    if (existsSync(existing) && cwd !== ROOT) cpSync(existing, join(cwd, assets), { recursive: true });
    else mkdirSync(join(cwd, assets), { recursive: true });
  }
  execFileSync(WRANGLER, ["deploy", "--dry-run", "--outdir", out], { cwd, stdio: "pipe", env: { ...process.env, CI: "1" } });
  const snapshot = ref?.startsWith("/") ? null : cwd;
  return {
    script: join(out, "worker.js"),
    config: join(cwd, "wrangler.toml"),
    source,
    cleanup() {
      rmSync(out, { recursive: true, force: true });
      if (snapshot) rmSync(snapshot, { recursive: true, force: true });
    },
  };
}

/** Children of this process named workerd, newest last. */
function workerdChildren(): number[] {
  const pids: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid && comm.startsWith("workerd")) pids.push(Number(d));
    } catch {
      // Raced with an exiting process.
    }
  }
  return pids.sort((a, b) => a - b);
}

/** Resident memory of a process in bytes. */
export function rssBytes(pid: number): number {
  return rssBreakdown(pid).rss;
}

/**
 * Resident memory in bytes (VmRSS, as rssBytes) and its parts: anonymous (heaps, buffers), file-backed
 * (mapped files and code) and shared memory (/proc/<pid>/status RssAnon, RssFile, RssShmem).
 */
export function rssBreakdown(pid: number): { rss: number; anon: number; file: number; shmem: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? "0") * 1024;
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile"), shmem: kb("RssShmem") };
}

async function startMiniflare(options: ConstructorParameters<typeof Miniflare>[0], persist: string): Promise<RuntimeServer> {
  const before = new Set(workerdChildren());
  const mf = new Miniflare(options);
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const pid = workerdChildren().find((p) => !before.has(p));
  if (pid === undefined) throw new Error("could not find the workerd process");
  return {
    url,
    wsUrl: url.replace(/^http/, "ws"),
    mf,
    pid,
    persist,
    async stop() {
      await mf.dispose();
      rmSync(persist, { recursive: true, force: true });
    },
    async restart() {
      await mf.dispose();
      return startMiniflare(options, persist);
    },
  };
}

/**
 * The real edgechat Worker with its Durable Objects, a migrated D1 and the local R2 bucket, persisted to
 * disk (so every commit really fsyncs, as in production-like local runs).
 */
export async function startEdgechat(opts: { bundle: Bundle; vars?: Record<string, string> }): Promise<RuntimeServer> {
  const persist = mkdtempSync(join(tmpdir(), "edgechat-bench-"));
  // Every D1 database the snapshot's wrangler.toml binds (older commits bind only DB). The databases are
  // migrated side by side by separate wrangler processes on one persist directory; on a busy machine one of
  // them sometimes dies with "SQLITE_BUSY: database is locked" while starting its runtime. A migration can be
  // left half applied then (an ALTER done, not recorded), so the retry starts again from an empty directory.
  for (let attempt = 1; ; attempt++) {
    try {
      await migrateLocalD1(dirname(opts.bundle.config), persist);
      break;
    } catch (err) {
      if (attempt >= 3 || !/SQLITE_BUSY|database is locked/.test(String(err))) throw err;
      log(`migrating local D1 failed with SQLITE_BUSY (attempt ${attempt}); starting again from an empty directory`);
      rmSync(persist, { recursive: true, force: true });
      mkdirSync(persist, { recursive: true });
      await sleep(1000 * attempt);
    }
  }
  const { workerOptions } = unstable_getMiniflareWorkerOptions(opts.bundle.config);
  const bindings = { ...(workerOptions.bindings ?? {}), AUTH_SECRET, ADMIN_SECRET, ...opts.vars };
  return startMiniflare(
    {
      ...(workerOptions as object),
      name: "edgechat",
      host: HOST,
      port: 0,
      modules: true,
      scriptPath: opts.bundle.script,
      modulesRoot: dirname(opts.bundle.script),
      bindings,
      // The benchmarks mint thousands of users from one address: lift the per-address admin budget.
      ratelimits: { ...(workerOptions.ratelimits ?? {}), ADMIN_LIMITER: { simple: { limit: 1_000_000, period: 60 } } },
      d1Persist: join(persist, "v3", "d1"),
      durableObjectsPersist: join(persist, "v3", "do"),
      // Miniflare's local R2 (scenario 9) runs inside this same workerd process (a Durable Object of its
      // own service, metadata in SQLite) and keeps object bytes as files through workerd's disk service.
      r2Persist: join(persist, "v3", "r2"),
      log: undefined,
    } as ConstructorParameters<typeof Miniflare>[0],
    persist,
  );
}

/** The project's compatibility date (wrangler.toml), so the bare comparison Workers run on the same runtime behaviour. */
function projectCompatibilityDate(): string {
  return /compatibility_date\s*=\s*"([^"]+)"/.exec(readFileSync(join(ROOT, "wrangler.toml"), "utf8"))?.[1] ?? "2026-04-01";
}

/**
 * The bare comparison: a Worker + SQLite-backed object that only accepts hibernatable sockets, deployed the
 * way edgechat is: behind the same static-assets router (the project's `[assets]` routing, with an empty
 * assets directory), reached under /v1/ so the router hands it to the Worker. Every socket through that
 * router costs ~60 KiB of the runtime's memory locally (measured, bench/README.md), for both systems alike.
 */
export async function startBare(): Promise<RuntimeServer> {
  const persist = mkdtempSync(join(tmpdir(), "edgechat-bench-bare-"));
  const compatibilityDate = projectCompatibilityDate();
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const assets = (workerOptions as { assets?: { directory: string } }).assets;
  const assetsDir = join(persist, "assets");
  mkdirSync(assetsDir, { recursive: true });
  return startMiniflare(
    {
      name: "bare",
      host: HOST,
      port: 0,
      modules: true,
      scriptPath: join(BENCH_DIR, "bare", "worker.js"),
      modulesRoot: join(BENCH_DIR, "bare"),
      compatibilityDate,
      durableObjects: { BARE: { className: "BareObject", useSQLite: true }, RELAY: { className: "BareRelay", useSQLite: true } },
      durableObjectsPersist: join(persist, "do"),
      ...(assets ? { assets: { ...assets, directory: assetsDir } } : {}),
    } as ConstructorParameters<typeof Miniflare>[0],
    persist,
  );
}

/** Where the bare Worker takes sockets and requests (under the Worker's own routes, as edgechat's API). */
export const BARE_PATH = "/v1/bare";

/** A member's socket URL in one of the bare runtime's relay rooms (scenarios 1 and 3). */
export function bareRelayUrl(wsBase: string, room: string, user: string): string {
  return `${wsBase}${BARE_PATH}/relay?room=${encodeURIComponent(room)}&user=${encodeURIComponent(user)}`;
}

/** Scenario 9's bare comparison: a Worker that only moves bodies into the local R2 bucket and back. */
export async function startBareR2(): Promise<RuntimeServer> {
  const persist = mkdtempSync(join(tmpdir(), "edgechat-bench-bare-r2-"));
  const compatibilityDate = projectCompatibilityDate();
  return startMiniflare(
    {
      name: "bare-r2",
      host: HOST,
      port: 0,
      modules: true,
      scriptPath: join(BENCH_DIR, "bare", "r2", "worker.js"),
      modulesRoot: join(BENCH_DIR, "bare", "r2"),
      compatibilityDate,
      r2Buckets: { B: "bench-bare-r2" },
      r2Persist: join(persist, "r2"),
    },
    persist,
  );
}

export function workerdVersion(): string {
  try {
    return execFileSync(join(ROOT, "node_modules", ".bin", "workerd"), ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return JSON.parse(readFileSync(join(ROOT, "node_modules", "workerd", "package.json"), "utf8")).version as string;
  }
}
