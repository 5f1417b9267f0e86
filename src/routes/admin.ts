// Server-to-server: an app backend with its own users mints access tokens for them.
import { Hono } from "hono";
import { AdminTokenBodySchema } from "../protocol/api";
import { findUserById, insertUser } from "../db/users";
import { AppError } from "../lib/errors";
import { readJson, safeEqual, type AppEnv } from "../lib/http";
import { mintAccessToken } from "../lib/tokens";

export const adminRoutes = new Hono<AppEnv>()
  .use(async (c, next) => {
    const auth = c.req.header("Authorization") ?? "";
    const secret = c.env.ADMIN_SECRET;
    if (!secret || !auth.startsWith("Bearer ") || !safeEqual(auth.slice(7), secret)) {
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
