// The per-address auth budget (AUTH_LIMITER, 20 a minute) counts an IPv6 client by its /64, whatever the
// spelling of its addresses, an IPv4-mapped IPv6 address as its IPv4 address, and IPv4 per address.
// This file owns 2001:db8:a11:10::/60 and 198.51.100.200-209; no other test uses them.
import { expect, it } from "vitest";
import { api } from "./helpers";
import { inOneWindow } from "./limit-windows";

const BUDGET = 20;

/** A refresh with a token that does not exist: 401 while the address has budget, 429 after. No password hashing. */
async function attempt(address: string) {
  const r = await api("POST", "/v1/auth/refresh", { body: { refreshToken: "rt_not_a_token" }, headers: { "CF-Connecting-IP": address } });
  return { status: r.status, code: r.body.error.code as string, retryAfter: r.headers.get("Retry-After") };
}

it("twenty addresses of one IPv6 /64, in any spelling, exhaust one budget; the next /64 has its own", async () => {
  const outcome = await inOneWindow(async (n) => {
    const p = `2001:db8:a11:${(0x10 + n).toString(16)}`;
    const spellings = [
      `${p}::1`,
      `${p}:0:0:0:2`,
      `2001:0db8:0a11:${(0x10 + n).toString(16).padStart(4, "0")}:0000:0000:0000:0003`,
      `${p}:FFFF:FFFF:FFFF:FFFF`.toUpperCase(),
      `${p}::ffff:192.0.2.1`,
      `${p}:1234:5678:9abc:def0`,
    ];
    const addresses = [...spellings, ...Array.from({ length: BUDGET - spellings.length }, (_, i) => `${p}:${(i + 1).toString(16)}::${((i * 7919) % 0x10000).toString(16)}`)];
    const within = [];
    for (const a of addresses) within.push(await attempt(a));
    return { within, over: await attempt(`${p}:abcd:ef01::99`), neighbour: await attempt(`2001:db8:a11:${(0x18 + n).toString(16)}::1`) };
  });
  expect(outcome.within.map((o) => o.status)).toEqual(Array(BUDGET).fill(401));
  expect(outcome.over).toEqual({ status: 429, code: "rate_limited", retryAfter: "60" });
  expect(outcome.neighbour.status).toBe(401);
});

it("an IPv4-mapped IPv6 address shares its IPv4 address's budget; IPv4 stays per address", async () => {
  const outcome = await inOneWindow(async (n) => {
    const octet = 200 + n * 2;
    const v4 = `198.51.100.${octet}`;
    const hex = `c633:64${octet.toString(16).padStart(2, "0")}`;
    const addresses = [...Array(10).fill(v4), ...Array(5).fill(`::ffff:${v4}`), ...Array(5).fill(`::FFFF:${hex.toUpperCase()}`)];
    const within = [];
    for (const a of addresses) within.push(await attempt(a));
    return { within, over: await attempt(v4), overMapped: await attempt(`0:0:0:0:0:ffff:${v4}`), nextAddress: await attempt(`198.51.100.${octet + 1}`) };
  });
  expect(outcome.within.map((o) => o.status)).toEqual(Array(BUDGET).fill(401));
  expect(outcome.over).toEqual({ status: 429, code: "rate_limited", retryAfter: "60" });
  expect(outcome.overMapped.status).toBe(429);
  expect(outcome.nextAddress.status).toBe(401);
});
