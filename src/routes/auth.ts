// Sign up, log in, refresh. Passwords: PBKDF2-SHA256 (lib/passwords). Refresh tokens rotate (db/refresh-tokens).
import { Hono } from "hono";
import { LoginBodySchema, RefreshBodySchema, SignupBodySchema, type AuthResponse, type PublicUser } from "../protocol/api";
import { findRefreshToken, issueRefreshToken, rotateRefreshToken } from "../db/refresh-tokens";
import { findUserById, findUserByUsername, insertUser } from "../db/users";
import { addressKey } from "../lib/client-address";
import { AppError } from "../lib/errors";
import { readJson, type AppContext, type AppEnv } from "../lib/http";
import { newId } from "../lib/ids";
import { burnPasswordCheck, hashPassword, verifyPassword } from "../lib/passwords";
import { spend } from "../lib/request-limits";
import { mintAccessToken } from "../lib/tokens";

/** A session for `user`: a new access token, and `refreshToken` if given (a rotation), else a new family. */
async function issueSession(c: AppContext, user: PublicUser, refreshToken?: string): Promise<AuthResponse> {
  const { accessTokenTtl, refreshTokenTtl } = c.var.config;
  const accessToken = await mintAccessToken(c.env.AUTH_SECRET, user, accessTokenTtl);
  const token = refreshToken ?? (await issueRefreshToken(c.env.DB, user.id, refreshTokenTtl)).token;
  return { user: { id: user.id, username: user.username }, accessToken, refreshToken: token, expiresIn: accessTokenTtl };
}

/**
 * The per-account budget (AUTH_ACCOUNT_LIMITER): attempts on one username (sign-up and login share it) or
 * on one refresh-token family, from any number of addresses. Spent after the per-address budget, so
 * requests that one address makes over its own budget do not count against the account.
 */
const spendAccount = (c: AppContext, key: string) => spend(c.env.AUTH_ACCOUNT_LIMITER, key, "too many attempts on this account; wait a minute");

export const authRoutes = new Hono<AppEnv>()
  // Brute-force guard: a per-address budget shared by signup, login and refresh, before the body is read.
  .use(async (c, next) => {
    const address = addressKey(c.req.header("CF-Connecting-IP"));
    await spend(c.env.AUTH_LIMITER, `auth:${address}`, "too many attempts from this address; wait a minute");
    await next();
  })
  .post("/signup", async (c) => {
    const { username, password } = await readJson(c, SignupBodySchema);
    await spendAccount(c, `user:${username}`);
    const user = { id: newId("u"), username };
    const created = await insertUser(c.env.DB, { ...user, passwordHash: await hashPassword(password) });
    if (!created) throw new AppError("username_taken", "that username is taken");
    return c.json(await issueSession(c, user), 201);
  })
  .post("/login", async (c) => {
    const { username, password } = await readJson(c, LoginBodySchema);
    await spendAccount(c, `user:${username}`);
    const user = await findUserByUsername(c.env.DB, username);
    if (!user?.passwordHash) {
      await burnPasswordCheck(password);
      throw new AppError("invalid_credentials", "wrong username or password");
    }
    if (!(await verifyPassword(password, user.passwordHash))) throw new AppError("invalid_credentials", "wrong username or password");
    return c.json(await issueSession(c, user), 200);
  })
  .post("/refresh", async (c) => {
    const { refreshToken } = await readJson(c, RefreshBodySchema);
    const stored = await findRefreshToken(c.env.DB, refreshToken);
    if (!stored) throw new AppError("invalid_refresh_token", "invalid or expired refresh token");
    await spendAccount(c, `family:${stored.familyId}`);
    const result = await rotateRefreshToken(c.env.DB, stored, c.var.config.refreshTokenTtl);
    if (!result.ok) {
      const message = result.reason === "reused" ? "refresh token was already used; every session of this login is revoked" : "invalid or expired refresh token";
      throw new AppError("invalid_refresh_token", message);
    }
    const user = await findUserById(c.env.DB, result.userId);
    if (!user) throw new AppError("invalid_refresh_token", "invalid or expired refresh token");
    return c.json(await issueSession(c, user, result.token), 200);
  });
