import { describe, expect, it } from "vitest";
import { env } from "cloudflare:test";
import { api, uniq } from "./helpers";

const password = "a long enough password";

describe("signup and login", () => {
  it("signs up, logs in case-insensitively, and rejects a taken username in any case", async () => {
    const name = uniq("Al").slice(0, 20);
    const signup = await api("POST", "/v1/auth/signup", { body: { username: name, password } });
    expect(signup.status).toBe(201);
    expect(signup.body.user.username).toBe(name.toLowerCase());
    expect(signup.body.expiresIn).toBe(3600);
    expect(signup.body.accessToken.split(".")).toHaveLength(3);

    const me = await api("GET", "/v1/me", { token: signup.body.accessToken });
    expect(me.body.user).toEqual(signup.body.user);

    const taken = await api("POST", "/v1/auth/signup", { body: { username: name.toUpperCase(), password } });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe("username_taken");

    const login = await api("POST", "/v1/auth/login", { body: { username: name.toUpperCase(), password } });
    expect(login.status).toBe(200);
    expect(login.body.user.id).toBe(signup.body.user.id);

    const wrong = await api("POST", "/v1/auth/login", { body: { username: name, password: "not the password" } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("invalid_credentials");
    const nobody = await api("POST", "/v1/auth/login", { body: { username: "nobody_here", password } });
    expect(nobody.body.error.code).toBe("invalid_credentials");

    // The password is stored as PBKDF2-SHA256 with 100,000 iterations and a salt, never in clear.
    const row = await env.DB.prepare("SELECT password_hash AS h FROM users WHERE id = ?").bind(signup.body.user.id).first<{ h: string }>();
    expect(row!.h).toMatch(/^pbkdf2-sha256\$100000\$[\w-]{22}\$[\w-]{43}$/);
    expect(row!.h).not.toContain(password);
  });

  it.each([
    [{ username: "ab", password }, "validation_failed"],
    [{ username: "a".repeat(33), password }, "validation_failed"],
    [{ username: "has space", password }, "validation_failed"],
    [{ username: "émile", password }, "validation_failed"],
    [{ username: "okname", password: "short" }, "validation_failed"],
    [{ username: 42, password }, "validation_failed"],
    [{}, "validation_failed"],
  ])("refuses %j with %s", async (body, code) => {
    const r = await api("POST", "/v1/auth/signup", { body });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe(code);
  });

  it("refuses malformed JSON and oversized bodies with clear errors", async () => {
    const bad = await api("POST", "/v1/auth/signup", { rawBody: "{not json", headers: { "Content-Type": "application/json" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_json");
    const huge = await api("POST", "/v1/auth/signup", { rawBody: JSON.stringify({ username: "x".repeat(200_000), password }) });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe("payload_too_large");
  });
});

describe("refresh tokens", () => {
  it("rotate on use; reusing a rotated token revokes the whole family", async () => {
    const signup = await api("POST", "/v1/auth/signup", { body: { username: uniq("rt").slice(0, 20), password } });
    const first = signup.body.refreshToken as string;
    const second = await api("POST", "/v1/auth/refresh", { body: { refreshToken: first } });
    expect(second.status).toBe(200);
    expect(second.body.refreshToken).not.toBe(first);
    expect((await api("GET", "/v1/me", { token: second.body.accessToken })).status).toBe(200);
    const third = await api("POST", "/v1/auth/refresh", { body: { refreshToken: second.body.refreshToken } });
    expect(third.status).toBe(200);

    // An attacker replays the first token: refused, and every token of that login dies with it.
    const replay = await api("POST", "/v1/auth/refresh", { body: { refreshToken: first } });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe("invalid_refresh_token");
    const legit = await api("POST", "/v1/auth/refresh", { body: { refreshToken: third.body.refreshToken } });
    expect(legit.status).toBe(401);

    // Only hashes are stored.
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM refresh_tokens WHERE token_hash = ?").bind(first).first<{ n: number }>();
    expect(stored!.n).toBe(0);
  });

  it("a refresh token is not an access token, and garbage is refused", async () => {
    const signup = await api("POST", "/v1/auth/signup", { body: { username: uniq("rx").slice(0, 20), password } });
    expect((await api("GET", "/v1/me", { token: signup.body.refreshToken })).status).toBe(401);
    const r = await api("POST", "/v1/auth/refresh", { body: { refreshToken: "rt_nonsense" } });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("invalid_refresh_token");
  });
});

describe("admin-minted tokens", () => {
  it("creates the user on first use, returns the same user after, and needs the admin secret", async () => {
    const username = uniq("ext").slice(0, 20);
    const headers = { Authorization: `Bearer ${env.ADMIN_SECRET}` };
    const first = await api("POST", "/v1/admin/tokens", { headers, body: { userId: `app-${username}`, username } });
    expect(first.status).toBe(200);
    expect(first.body.user).toEqual({ id: `app-${username}`, username });
    const again = await api("POST", "/v1/admin/tokens", { headers, body: { userId: `app-${username}`, username } });
    expect(again.body.user.id).toBe(`app-${username}`);
    expect((await api("GET", "/v1/me", { token: again.body.accessToken })).body.user.id).toBe(`app-${username}`);

    const clash = await api("POST", "/v1/admin/tokens", { headers, body: { userId: `other-${username}`, username } });
    expect(clash.status).toBe(409);
    const noSecret = await api("POST", "/v1/admin/tokens", { body: { userId: "x1", username: "xyz" } });
    expect(noSecret.status).toBe(401);
    const wrongSecret = await api("POST", "/v1/admin/tokens", { headers: { Authorization: "Bearer nope" }, body: { userId: "x1", username: "xyz" } });
    expect(wrongSecret.status).toBe(401);
  });
});
