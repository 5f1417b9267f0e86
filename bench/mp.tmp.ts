import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { bundleWorker, rssBytes } from "./lib/workerd.ts";
import { Miniflare, Log, LogLevel } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { tmpdir } from "node:os";
async function startEdgechat(opts: { bundle: ReturnType<typeof bundleWorker>; vars: Record<string, string> }) {
  const persist = mkdtempSync(join(tmpdir(), "edgechat-bench-"));
  execFileSync(join(process.cwd(), "node_modules/.bin/wrangler"), ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist], { cwd: dirname(opts.bundle.config), stdio: "pipe", env: { ...process.env, CI: "1" } });
  const { workerOptions } = unstable_getMiniflareWorkerOptions(opts.bundle.config);
  const mf = new Miniflare({ ...(workerOptions as object), name: "edgechat", host: "127.0.0.1", port: 0, modules: true, scriptPath: opts.bundle.script, modulesRoot: dirname(opts.bundle.script),
    bindings: { ...(workerOptions.bindings ?? {}), AUTH_SECRET: "bench-auth-secret-0123456789abcdef0123456789", ADMIN_SECRET: "bench-admin-secret", ...opts.vars },
    d1Persist: join(persist, "v3", "d1"), durableObjectsPersist: join(persist, "v3", "do"), r2Persist: join(persist, "v3", "r2"), log: new Log(LogLevel.DEBUG) } as ConstructorParameters<typeof Miniflare>[0]);
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const pid = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number).filter((d) => { try { const st = readFileSync(`/proc/${d}/stat`, "utf8"); return st.includes("(workerd)") && Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[1]) === process.pid; } catch { return false; } }).pop()!;
  return { url, pid, stop: () => mf.dispose() };
}
import { createUsers, createGroup } from "./lib/client.ts";
import { paramsFor } from "./lib/params.ts";
const bundle = bundleWorker();
const edge = await startEdgechat({ bundle, vars: paramsFor("full").serverVars });
console.log("pid", edge.pid);
const alive = () => { try { readFileSync(`/proc/${edge.pid}/status`); return true; } catch { return false; } };
const mon = setInterval(() => { if (!alive()) { console.log("workerd gone at", new Date().toISOString()); clearInterval(mon); } else console.log("rss", Math.round(rssBytes(edge.pid) / 2 ** 20)); }, 1000);
try {
  const users = await createUsers(edge.url, 1, "mp");
  const conv = await createGroup(edge.url, users[0]!, users, "mp");
  const auth = { Authorization: `Bearer ${users[0]!.token}` };
  const size = 100_000_000;
  const data = randomBytes(size);
  const c = await (await fetch(`${edge.url}/v1/conversations/${conv}/attachments/multipart`, { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ name: "x.bin", size, contentType: "application/octet-stream" }) })).json() as { attachment: { id: string }; partSize: number; partCount: number };
  console.log(c.partCount);
  const nums = Array.from({ length: c.partCount }, (_, i) => i + 1);
  let next = 0;
  const parts: unknown[] = [];
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (next < nums.length) {
      const n = nums[next++]!;
      const t = Date.now();
      let r: Response, j: string;
      try {
        r = await fetch(`${edge.url}/v1/attachments/${c.attachment.id}/parts/${n}`, { method: "PUT", headers: auth, body: data.subarray((n - 1) * c.partSize, Math.min(n * c.partSize, size)) });
        j = await r.text();
      } catch (e) { console.log(n, "failed", String((e as Error).cause ?? e), Date.now() - t, "ms; workerd alive", alive()); continue; }
      console.log(n, r.status, j.slice(0, 120), Date.now() - t, "ms");
      if (r.status === 200) parts.push(JSON.parse(j));
    }
  }));
  const r = await fetch(`${edge.url}/v1/attachments/${c.attachment.id}/complete`, { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ parts }) });
  console.log("complete", r.status, (await r.text()).slice(0, 200));
} catch (e) { console.log("error", e); }
clearInterval(mon);
await edge.stop().catch((e) => console.log("stop", e));
bundle.cleanup();
