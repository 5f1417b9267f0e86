// Start the real Worker (workerd via wrangler's startWorker) on 127.0.0.1 with a migrated local D1.
// Used by the Node-side end-to-end tests, the benchmarks and `npm run verify`.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { unstable_startWorker } from "wrangler";
import { migrateLocalD1 } from "../scripts/local-d1.mjs";

export interface LocalServer {
  url: string;
  wsUrl: string;
  adminSecret: string;
  stop(): Promise<void>;
}

export const ROOT = resolve(import.meta.dirname, "..");

process.env.WRANGLER_SEND_METRICS ??= "false";
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
process.env.WRANGLER_HIDE_BANNER ??= "true";

export async function startLocalServer(options: { vars?: Record<string, string>; persistDir?: string } = {}): Promise<LocalServer> {
  const persist = options.persistDir ?? mkdtempSync(join(tmpdir(), "edgechat-"));
  await migrateLocalD1(ROOT, persist);
  // At least 32 characters, or the admin API refuses to serve (src/routes/admin.ts).
  const adminSecret = "e2e-admin-secret-0123456789abcdef";
  const vars: Record<string, string> = {
    AUTH_SECRET: "e2e-auth-secret-0123456789",
    ADMIN_SECRET: adminSecret,
    // Load generators (tests, verify, bench) send far above the per-user default of 10/s.
    SEND_RATE_PER_SECOND: "1000000",
    SEND_BURST: "1000000",
    // They also put minted strangers in groups and create conversations far faster than a person does.
    GROUP_ADDS_DEFAULT: "anyone",
    CREATE_CONVERSATIONS_BURST: "1000000",
    MEMBER_CHANGES_BURST: "1000000",
    PRESENCE_SUBSCRIBES_BURST: "1000000",
    ...options.vars,
  };
  // Values from an env file override wrangler.toml [vars] (bindings passed directly do not), like .dev.vars.
  const envFile = join(persist, "test.vars");
  writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n");
  const worker = await unstable_startWorker({
    config: join(ROOT, "wrangler.toml"),
    envFiles: [envFile],
    // Load generators mint thousands of users from one address: lift the per-address admin budget
    // (6,000 a minute in wrangler.toml), as the send rate is lifted above.
    bindings: { ADMIN_LIMITER: { type: "ratelimit", namespace_id: "1102", simple: { limit: 1_000_000, period: 60 } } },
    dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, persist, watch: false, logLevel: "warn" },
  });
  await worker.ready;
  const url = (await worker.url).toString().replace(/\/$/, "");
  return {
    url,
    wsUrl: url.replace(/^http/, "ws"),
    adminSecret,
    async stop() {
      await worker.dispose();
      if (!options.persistDir) rmSync(persist, { recursive: true, force: true });
    },
  };
}
