// The download link of a user's data export (docs/protocol.md 17): a signed URL, valid until the file is
// deleted (EXPORT_TTL_SECONDS), for whoever holds it (the user, through the app); no token, no admin secret.
// The signature (src/lib/signed-urls.ts, purpose "export") binds the job id, the user id and the expiry.
import { Hono } from "hono";
import { JOB_ID_RE } from "../protocol/admin";
import { USER_ID_RE } from "../protocol/api";
import { AppError } from "../lib/errors";
import type { AppEnv } from "../lib/http";
import { verifyUrl } from "../lib/signed-urls";
import { exportKey } from "../objects/user/export";

export const exportRoutes = new Hono<AppEnv>().get("/:id", async (c) => {
  const id = c.req.param("id");
  if (!JOB_ID_RE.test(id)) throw new AppError("not_found", "no such export");
  const check = await verifyUrl(c.env.AUTH_SECRET, "export", id, new URL(c.req.url).searchParams);
  if (!check.ok) throw new AppError("invalid_signature", check.reason === "expired" ? "this link has expired; the export was deleted" : "this link is not valid");
  if (!USER_ID_RE.test(check.userId)) throw new AppError("invalid_signature", "this link is not valid");
  const object = await c.env.HISTORY.get(exportKey(check.userId, id));
  if (!object) throw new AppError("not_found", "this export no longer exists");
  return new Response(object.body, {
    status: 200,
    headers: {
      "Content-Type": "application/x-ndjson; charset=utf-8",
      "Content-Length": String(object.size),
      "Content-Disposition": `attachment; filename="edgechat-export-${id}.ndjson"`,
      "Cache-Control": "private, no-store",
      "X-Content-Type-Options": "nosniff",
      ETag: object.httpEtag,
    },
  });
});
