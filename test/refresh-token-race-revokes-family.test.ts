// Protocol 2.3: once reuse of a refresh token is detected, every token of that login (family) is dead,
// including a token that a concurrent, winning refresh just issued. Both orders of the race are tried
// many times: the loser's revoke may land before or after the winner stores its new token.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:test";
import { api, uniq } from "./helpers";
import { sha256Hex } from "../src/lib/ids";

const password = "a long enough password";
const TRIALS = 16;

async function signupFamily(): Promise<string> {
  const r = await api("POST", "/v1/auth/signup", { body: { username: uniq("rr").slice(0, 30), password } });
  expect(r.status).toBe(201);
  return r.body.refreshToken as string;
}

const refresh = (refreshToken: string) => api("POST", "/v1/auth/refresh", { body: { refreshToken } });

/** Tokens of the family of `token`: all of them, and those not revoked (after a detected reuse: none). */
async function familyOf(token: string): Promise<{ all: number; live: number }> {
  const row = await env.DB.prepare(
    "SELECT count(*) AS all_, count(*) FILTER (WHERE revoked_at IS NULL) AS live FROM refresh_tokens WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = ?)",
  )
    .bind(await sha256Hex(token))
    .first<{ all_: number; live: number }>();
  return { all: row!.all_, live: row!.live };
}

/**
 * After a detected reuse: how the family still lives, if it does. Every new refresh token that a 200 handed
 * out must now be refused, and no token of the family may be left unrevoked. Empty when the family is dead.
 */
async function survivals(tokens: string[], original: string): Promise<string[]> {
  const out: string[] = [];
  for (const t of tokens) {
    const again = await refresh(t);
    if (again.status !== 401 || again.body.error.code !== "invalid_refresh_token") out.push(`winner's new token refreshed: ${again.status}`);
  }
  const { live } = await familyOf(original);
  if (live !== 0) out.push(`${live} unrevoked token(s) in the family`);
  return out;
}

describe("refresh-token reuse under concurrency", () => {
  it("two concurrent refreshes of one token: one wins, the reuse is detected, and the winner's new token dies too", async () => {
    const originals = await Promise.all(Array.from({ length: TRIALS }, signupFamily));
    let reusesDetected = 0;
    const alive = await Promise.all(
      originals.map(async (token) => {
        const [a, b] = await Promise.all([refresh(token), refresh(token)]);
        const won = [a, b].filter((r) => r.status === 200);
        // Never two winners for one token.
        expect(won.length).toBeLessThanOrEqual(1);
        const lost = [a, b].filter((r) => r.status !== 200);
        for (const r of lost) expect(r.body.error.code).toBe("invalid_refresh_token");
        if (lost.some((r) => /already used/.test(r.body.error.message))) reusesDetected++;
        // Only a winner stores a successor: the family holds the original and at most one more token.
        expect((await familyOf(token)).all).toBe(1 + won.length);
        // Whatever the interleaving, presenting the same token twice is reuse: the family is dead.
        return survivals(
          won.map((r) => r.body.refreshToken as string),
          token,
        );
      }),
    );
    expect(reusesDetected).toBe(TRIALS);
    expect(alive.filter((a) => a.length > 0)).toEqual([]);
  });

  it("a replayed old token racing the legitimate refresh of the current one kills the whole family", async () => {
    const originals = await Promise.all(Array.from({ length: TRIALS }, signupFamily));
    const alive = await Promise.all(
      originals.map(async (old, i) => {
        const current = await refresh(old);
        expect(current.status).toBe(200);
        // The owner refreshes `current` while an attacker replays `old`, started 0-3 ms later so that the
        // trials sweep the window between the owner's claim and its new token being stored.
        const legitRun = refresh(current.body.refreshToken);
        await new Promise((r) => setTimeout(r, i % 4));
        const [replay, legit] = await Promise.all([refresh(old), legitRun]);
        expect(replay.status).toBe(401);
        expect(replay.body.error.message).toMatch(/already used/);
        return survivals(legit.status === 200 ? [legit.body.refreshToken as string] : [], old);
      }),
    );
    expect(alive.filter((a) => a.length > 0)).toEqual([]);
  });
});
