// The edge entry point: a Hono app that authenticates every request and routes it. Conversations live
// in ConversationObject (one per conversation); accounts and the message archive live in D1.
import { Hono } from "hono";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { AppError } from "./lib/errors";
import { withConfig, type AppEnv } from "./lib/http";
import { adminRoutes } from "./routes/admin";
import { attachmentRoutes } from "./routes/attachments";
import { exportRoutes } from "./routes/exports";
import { authRoutes } from "./routes/auth";
import { conversationRoutes } from "./routes/conversations";
import { meRoutes, userRoutes } from "./routes/users";
import { websocketRoutes } from "./routes/websocket";
import { inboxRoutes, presenceRoutes, userSocketRoute } from "./routes/me";
import { privacyRoutes } from "./routes/privacy";
import { handleQueue } from "./queues";

export { ConversationObject } from "./objects/conversation";
export { UserObject } from "./objects/user";

const app = new Hono<AppEnv>();

app.use(withConfig);
app.use(secureHeaders({ crossOriginResourcePolicy: false }));
app.use(
  "/v1/*",
  // Built once. The allow-list comes from CORS_ORIGINS (comma-separated, "*" for any); empty means same-origin only.
  cors({
    origin: (origin, c) => {
      const allowed = ((c.env as Env).CORS_ORIGINS ?? "").split(",").map((s) => s.trim());
      return allowed.includes("*") || allowed.includes(origin) ? origin : null;
    },
    allowHeaders: ["Authorization", "Content-Type", "Range", "If-None-Match", "X-Attachment-Name", "X-Attachment-Width", "X-Attachment-Height", "X-Attachment-Preview"],
    allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    exposeHeaders: ["ETag", "Content-Range", "Content-Disposition", "Retry-After"],
    maxAge: 600,
  }),
);

app.get("/healthz", (c) => c.json({ ok: true }));

// WebSocket upgrades first: they carry their token in the query or subprotocol, not in Authorization.
app.route("/v1", websocketRoutes);
app.route("/v1", userSocketRoute);
app.route("/v1/auth", authRoutes);
app.route("/v1/admin", adminRoutes);
app.route("/v1/exports", exportRoutes);
app.route("/v1/me/conversations", inboxRoutes);
app.route("/v1/me", privacyRoutes);
app.route("/v1/me", meRoutes);
app.route("/v1/users", presenceRoutes);
app.route("/v1/users", userRoutes);
app.route("/v1", attachmentRoutes);
app.route("/v1/conversations", conversationRoutes);

app.notFound((c) => c.json({ error: { code: "not_found", message: "no such route" } }, 404));

app.onError((err, c) => {
  if (err instanceof AppError) {
    if (err.retryAfterMs !== undefined) c.header("Retry-After", String(Math.ceil(err.retryAfterMs / 1000)));
    return c.json(err.toBody(), err.status as 400);
  }
  // Log the path without its query string: WebSocket tokens may travel there.
  console.error(JSON.stringify({ at: "unhandled", method: c.req.method, path: c.req.path, error: String(err) }));
  return c.json({ error: { code: "internal_error", message: "internal error" } }, 500);
});

export default {
  fetch: app.fetch,
  queue: handleQueue,
} satisfies ExportedHandler<Env>;
