// One web build and one local server for every browser test file (each file launches its own Chromium): the
// server start and the build are most of a browser file's time, so sharing them keeps the suite short.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { build } from "vite";
import type { TestProject } from "vitest/node";
import { ROOT, startLocalServer } from "../server.ts";
import { CHROMIUM } from "./browser.ts";
import { serveApp } from "./serve.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Where the app and the API are served (one origin). Empty when Chromium is missing (the files skip). */
    baseUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!existsSync(CHROMIUM)) {
    project.provide("baseUrl", "");
    return async () => {};
  }
  await build({ configFile: join(ROOT, "web", "vite.config.ts"), logLevel: "warn" });
  const server = await startLocalServer();
  // Prefer the Worker's own static assets ([assets] in wrangler.toml); else serve web/dist beside it.
  const home = await fetch(`${server.url}/`).then(async (r) => (r.ok ? r.text() : ""), () => "");
  const shim = home.includes('id="app"') ? null : await serveApp(server.url, join(ROOT, "web", "dist"));
  if (shim) console.info("[browser e2e] the Worker does not serve web/dist ([assets] missing in wrangler.toml): serving it from a same-origin shim");
  project.provide("baseUrl", shim?.url ?? server.url);
  return async () => {
    await shim?.close();
    await server.stop();
  };
}
