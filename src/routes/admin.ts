// Server-to-server: an app backend with its own users mints access tokens for them.
import { Hono } from "hono";
import { AdminTokenBodySchema } from "../protocol/api";
import { findUserById, insertUser } from "../db/users";
import { addressKey } from "../lib/client-address";
import { AppError } from "../lib/errors";
import { readJson, secretEquals, type AppEnv } from "../lib/http";
import { spend } from "../lib/request-limits";
import { mintAccessToken } from "../lib/tokens";

/** A shorter ADMIN_SECRET is refused: it would be a password anyone could try guessing at 100 a second. */
export const MIN_ADMIN_SECRET_LENGTH = 32;

/** The misconfiguration is logged once per isolate, not once per request. */
let shortSecretLogged = false;

export const adminRoutes = new Hono<AppEnv>()
  .use(async (c, next) => {
    const secret = c.env.ADMIN_SECRET ?? "";
    // No secret: the admin API is simply off (a deployment without an app backend). 401, as documented.
    if (secret && secret.length < MIN_ADMIN_SECRET_LENGTH) {
      if (!shortSecretLogged) {
        shortSecretLogged = true;
        console.error(JSON.stringify({ at: "admin_disabled", reason: `ADMIN_SECRET is shorter than ${MIN_ADMIN_SECRET_LENGTH} characters` }));
      }
      throw new AppError("unavailable", `admin API disabled: the server's ADMIN_SECRET is shorter than ${MIN_ADMIN_SECRET_LENGTH} characters`);
    }
    // Every call counts against the caller's address (this also bounds secret guessing), and each wrong or
    // missing secret against a much smaller budget of failures.
    const address = addressKey(c.req.header("CF-Connecting-IP"));
    await spend(c.env.ADMIN_LIMITER, `admin:${address}`, "too many admin calls from this address; wait a minute");
    const auth = c.req.header("Authorization") ?? "";
    if (!secret || !auth.startsWith("Bearer ") || !(await secretEquals(auth.slice(7), secret))) {
      await spend(c.env.ADMIN_FAIL_LIMITER, `admin-fail:${address}`, "too many wrong admin secrets from this address; wait a minute");
      throw new AppError("unauthorized", "admin secret required");
    }
    await next();
  })
  .post("/tokens", async (c) => {
    const { userId, username } = await readJson(c, AdminTokenBodySchema);
    let user = await findUserById(c.env.DB, userId);
    if (!user) {
      const created = await insertUser(c.env.DB, { id: userId, username, passwordHash: null });
      user = await findUserById(c.env.DB, userId);
      if (!created && user?.username !== username) throw new AppError("username_taken", "that username belongs to another user");
      if (!user) throw new AppError("username_taken", "that username belongs to another user");
    }
    const ttl = c.var.config.accessTokenTtl;
    const accessToken = await mintAccessToken(c.env.AUTH_SECRET, user, ttl);
    return c.json({ user: { id: user.id, username: user.username }, accessToken, expiresIn: ttl }, 200);
  });
