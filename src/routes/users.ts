import { Hono } from "hono";
import * as v from "valibot";
import { UsernameSchema } from "../protocol/api";
import { findUserById, findUserByUsername } from "../db/users";
import { AppError } from "../lib/errors";
import { parseQuery, requireUser, type AppEnv } from "../lib/http";

export const meRoutes = new Hono<AppEnv>().use(requireUser).get("/", async (c) => {
  const user = await findUserById(c.env.DB, c.var.user.userId);
  if (!user) throw new AppError("user_not_found", "this account no longer exists");
  return c.json({ user: { id: user.id, username: user.username } });
});

export const userRoutes = new Hono<AppEnv>().use(requireUser).get("/", async (c) => {
  const { username } = parseQuery(c, v.object({ username: UsernameSchema }));
  const user = await findUserByUsername(c.env.DB, username);
  if (!user) throw new AppError("user_not_found", "no user with that username");
  return c.json({ user: { id: user.id, username: user.username } });
});
