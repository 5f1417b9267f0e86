// Per-user routes: the user socket, the inbox, presence, receipts. Answered by the user's own object.
import { Hono } from "hono";
import * as v from "valibot";
import { USER_ID_RE } from "../protocol/api";
import { AppError, unwrap } from "../lib/errors";
import { parseQuery, requireUser, type AppEnv } from "../lib/http";
import { presenceVisible } from "../db/privacy";
import { IDENTITY_HEADER } from "../objects/shared/upgrade";
import { userStub } from "../objects/shared/stubs";
import { checkUpgrade, refuseSocket, selectedProtocol } from "./websocket";

/** GET /v1/me/ws: the user socket (inbox updates, receipts, presence) for one device. */
export const userSocketRoute = new Hono<AppEnv>().get("/me/ws", async (c) => {
  const req = c.req.raw;
  if (req.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return c.json({ error: { code: "upgrade_required", message: "this endpoint only accepts WebSocket upgrades" } }, 426);
  }
  const verdict = await checkUpgrade(req, c.env.AUTH_SECRET);
  if (!verdict.ok) return refuseSocket(req, verdict.code, verdict.reason);
  const headers = new Headers({ Upgrade: "websocket", [IDENTITY_HEADER]: JSON.stringify(verdict.identity) });
  for (const [name, value] of Object.entries(selectedProtocol(req))) headers.set(name, value);
  return userStub(c.env, verdict.identity.userId).fetch(new Request(`https://user/ws?v=${verdict.version}`, { headers }));
});

const InboxQuerySchema = v.object({
  cursor: v.optional(v.pipe(v.string(), v.maxLength(100))),
  limit: v.optional(
    v.pipe(v.string(), v.regex(/^\d{1,3}$/, "limit must be an integer"), v.transform(Number), v.minValue(1), v.maxValue(100, "limit must be at most 100")),
    "30",
  ),
});

export const inboxRoutes = new Hono<AppEnv>()
  .use(requireUser)
  .get("/", async (c) => {
    const q = parseQuery(c, InboxQuerySchema);
    return c.json(await unwrap(userStub(c.env, c.var.user.userId).inbox(q.cursor ?? null, q.limit)));
  });

export const presenceRoutes = new Hono<AppEnv>().use(requireUser).get("/:id/presence", async (c) => {
  const id = c.req.param("id");
  if (!USER_ID_RE.test(id)) throw new AppError("validation_failed", "invalid user id");
  const me = c.var.user.userId;
  // Presence is visible to people who share a conversation with the user and are not blocked either way (and to the user).
  if (id !== me && !(await presenceVisible(c.env.DB, me, [id])).has(id)) {
    throw new AppError("forbidden", "you share no conversation with this user");
  }
  const presence = await userStub(c.env, id).getPresence();
  return c.json({ presence: { ...presence, userId: id } });
});
