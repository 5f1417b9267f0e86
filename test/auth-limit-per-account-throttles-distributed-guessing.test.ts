// A per-account budget (AUTH_ACCOUNT_LIMITER, 30 a minute) beside the per-address one: guessing one
// account's password from many addresses is throttled, per username for sign-up and login and per token
// family for refresh. Only that account is affected. This file owns 198.51.100.64-199 and
// 2001:db8:a11:100::/56; no other test uses them.
import { expect, it } from "vitest";
import { api, uniq } from "./helpers";
import { inOneWindow } from "./limit-windows";

const ACCOUNT_BUDGET = 30;
const password = "the right password";

it("one username guessed from many addresses (one attempt each) is throttled; other accounts are not", async () => {
  const outcome = await inOneWindow(async (n) => {
    const address = (i: number) => ({ "CF-Connecting-IP": `198.51.100.${64 + n * 45 + i}` });
    const username = uniq("acct").slice(0, 30);
    // The sign-up is the account's first attempt.
    const signup = await api("POST", "/v1/auth/signup", { body: { username, password }, headers: address(0) });
    const guesses = [];
    for (let i = 1; i <= ACCOUNT_BUDGET + 4; i++) {
      const r = await api("POST", "/v1/auth/login", { body: { username: username.toUpperCase(), password: `guess ${i}` }, headers: address(i) });
      guesses.push({ status: r.status, code: r.body.error.code, retryAfter: r.headers.get("Retry-After") });
    }
    // Even the right password is refused for the rest of the window, from a fresh address.
    const owner = await api("POST", "/v1/auth/login", { body: { username, password }, headers: address(40) });
    // Another account, from an address the attack used, is unaffected.
    const other = await api("POST", "/v1/auth/signup", { body: { username: uniq("other").slice(0, 30), password }, headers: address(1) });
    return { signup: signup.status, guesses, owner: owner.status, other: other.status };
  });
  expect(outcome.signup).toBe(201);
  expect(outcome.guesses.slice(0, ACCOUNT_BUDGET - 1).map((g) => g.code)).toEqual(Array(ACCOUNT_BUDGET - 1).fill("invalid_credentials"));
  expect(outcome.guesses.slice(ACCOUNT_BUDGET - 1)).toEqual(Array(5).fill({ status: 429, code: "rate_limited", retryAfter: "60" }));
  expect(outcome.owner).toBe(429);
  expect(outcome.other).toBe(201);
});

it("one token family refreshed from many addresses is throttled; a new login is not", async () => {
  const outcome = await inOneWindow(async (n) => {
    const address = (i: number) => ({ "CF-Connecting-IP": `2001:db8:a11:${(0x100 + n * 0x40 + i).toString(16)}::1` });
    const username = uniq("fam").slice(0, 30);
    const signup = await api("POST", "/v1/auth/signup", { body: { username, password }, headers: address(0) });
    let token = signup.body.refreshToken as string;
    const statuses = [];
    for (let i = 1; i <= ACCOUNT_BUDGET + 2; i++) {
      const r = await api("POST", "/v1/auth/refresh", { body: { refreshToken: token }, headers: address(i) });
      statuses.push(r.status);
      if (r.status === 200) token = r.body.refreshToken;
    }
    const over = await api("POST", "/v1/auth/refresh", { body: { refreshToken: token }, headers: address(40) });
    // The throttled token was not used up: it is still the family's newest, not a reuse.
    const login = await api("POST", "/v1/auth/login", { body: { username, password }, headers: address(41) });
    return { statuses, over: { status: over.status, code: over.body.error?.code }, login: login.status };
  });
  expect(outcome.statuses.slice(0, ACCOUNT_BUDGET)).toEqual(Array(ACCOUNT_BUDGET).fill(200));
  expect(outcome.statuses.slice(ACCOUNT_BUDGET)).toEqual([429, 429]);
  expect(outcome.over).toEqual({ status: 429, code: "rate_limited" });
  expect(outcome.login).toBe(200);
});
