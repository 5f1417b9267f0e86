// /v1/admin/* is refused while ADMIN_SECRET is shorter than 32 characters (logged once), is rate limited per
// client address (ADMIN_LIMITER: 6,000 a minute in production, 200 in this suite so that it can be spent),
// and answers 429 after 10 wrong secrets a minute from one address (ADMIN_FAIL_LIMITER).
// This file owns 198.51.100.220-239 and 2001:db8:a11:200::/56; no other test uses them.
import { afterEach, expect, it, vi } from "vitest";
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import worker from "../src/worker";
import { rawFetch } from "./fuzz-helpers";
import { api, uniq } from "./helpers";
import { inOneWindow } from "./limit-windows";

const mint = (headers: Record<string, string>, username = uniq("adm").slice(0, 30)) =>
  api("POST", "/v1/admin/tokens", { headers, body: { userId: `ext_${username}`, username } });

afterEach(() => vi.restoreAllMocks());

it("refuses to serve the admin API while ADMIN_SECRET is shorter than 32 characters, and logs it once", async () => {
  const errors = vi.spyOn(console, "error");
  const call = async (secret: string, presented: string) => {
    const ctx = createExecutionContext();
    const username = uniq("short").slice(0, 30);
    const res = await worker.fetch(
      new Request("http://chat.test/v1/admin/tokens", {
        method: "POST",
        headers: { Authorization: `Bearer ${presented}`, "Content-Type": "application/json", "CF-Connecting-IP": "198.51.100.220" },
        body: JSON.stringify({ userId: `ext_${username}`, username }),
      }),
      { ...env, ADMIN_SECRET: secret },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
  };
  const short = "s".repeat(31);
  // Even the right (short) secret is refused, with a message that names the cause.
  const first = await call(short, short);
  expect(first.status).toBe(503);
  expect(first.body.error).toMatchObject({ code: "unavailable", message: expect.stringMatching(/ADMIN_SECRET.*32/) });
  expect((await call(short, short)).status).toBe(503);
  const logged = errors.mock.calls.filter((args) => String(args[0]).includes("admin_disabled"));
  expect(logged).toHaveLength(1);
  expect(String(logged[0]![0])).not.toContain(short);
  // 32 characters are enough.
  const long = "l".repeat(32);
  expect((await call(long, long)).status).toBe(200);
});

it("after 10 wrong secrets in a minute an address gets 429; other addresses, and the right secret, still work", async () => {
  const outcome = await inOneWindow(async (n) => {
    const attacker = { "CF-Connecting-IP": `2001:db8:a11:${(0x200 + n).toString(16)}::1` };
    // Other addresses of the same /64 share the budget.
    const sameNet = (i: number) => ({ "CF-Connecting-IP": `2001:db8:a11:${(0x200 + n).toString(16)}:${i.toString(16)}::1` });
    const wrong = [];
    for (let i = 0; i < 10; i++) wrong.push((await mint({ ...sameNet(i + 1), Authorization: `Bearer wrong-secret-${i}` })).status);
    const over = await mint({ ...attacker, Authorization: "Bearer wrong-secret-again" });
    const missing = await mint(attacker);
    const right = await mint({ ...attacker, Authorization: `Bearer ${env.ADMIN_SECRET}` });
    const elsewhere = await mint({ "CF-Connecting-IP": `2001:db8:a11:${(0x210 + n).toString(16)}::1`, Authorization: "Bearer wrong" });
    return { wrong, over: { status: over.status, code: over.body.error.code, retryAfter: over.headers.get("Retry-After") }, missing: missing.status, right: right.status, elsewhere: elsewhere.status };
  });
  expect(outcome.wrong).toEqual(Array(10).fill(401));
  expect(outcome.over).toEqual({ status: 429, code: "rate_limited", retryAfter: "60" });
  expect(outcome.missing).toBe(429);
  expect(outcome.right).toBe(200);
  expect(outcome.elsewhere).toBe(401);
});

it("every admin call counts against its address: over the budget, 429 even with the right secret", async () => {
  const BUDGET = 200;
  const outcome = await inOneWindow(async (n) => {
    const address = { "CF-Connecting-IP": `198.51.100.${221 + n}` };
    const auth = { Authorization: `Bearer ${env.ADMIN_SECRET}` };
    // Cheap calls with the right secret: a body that fails validation after the limiter and the secret check.
    // Straight to the app (rawFetch): requests through the test's worker binding slow down one by one.
    const statuses = new Map<number, number>();
    for (let i = 0; i < BUDGET; i++) {
      const r = await rawFetch("POST", "/v1/admin/tokens", { headers: { ...address, ...auth }, body: "{}" });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    const over = await mint({ ...address, ...auth });
    const elsewhere = await mint({ "CF-Connecting-IP": `198.51.100.${231 + n}`, ...auth });
    return { statuses: Object.fromEntries(statuses), over: { status: over.status, code: over.body.error?.code, retryAfter: over.headers.get("Retry-After") }, elsewhere: elsewhere.status };
  });
  expect(outcome.statuses).toEqual({ 400: BUDGET });
  expect(outcome.over).toEqual({ status: 429, code: "rate_limited", retryAfter: "60" });
  expect(outcome.elsewhere).toBe(200);
});
