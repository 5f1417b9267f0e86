// What every browser test file shares: Debian's Chromium (playwright-core never downloads one), where
// screenshots go, and how Chromium is launched.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { ROOT } from "../server.ts";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const HAS_CHROMIUM = existsSync(CHROMIUM);
export const SKIP_REASON = `${CHROMIUM} not found; install it with \`apt-get install -y chromium\` (playwright-core never downloads a browser)`;
export const SHOTS = join(ROOT, "test-results", "browser");

export async function launchChromium(): Promise<Browser> {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * Poll until `check` passes or the time is up; the error names what was awaited. The default allows for a
 * reload of the web app on a machine busy with other suites (8 s was not always enough beside them).
 */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
