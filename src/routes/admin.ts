// Server-to-server, with the ADMIN_SECRET: an app backend with its own users mints access tokens for them
// (protocol 2.4), and exports or erases one user's data (protocol 17: the routes start a job recorded in D1,
// src/db/admin-jobs.ts, and hand it to the user's object, which runs it: src/objects/user/admin-jobs.ts).
import { Hono } from "hono";
import { JOB_ID_RE, type AdminJob, type ExportResult, type JobKind } from "../protocol/admin";
import { AdminTokenBodySchema, USER_ID_RE } from "../protocol/api";
import { findErasure, findJob, findRunningJob, startJob } from "../db/admin-jobs";
import { findUserById, insertUser } from "../db/users";
import { addressKey } from "../lib/client-address";
import { AppError } from "../lib/errors";
import { readJson, secretEquals, type AppContext, type AppEnv } from "../lib/http";
import { spend } from "../lib/request-limits";
import { signUrl } from "../lib/signed-urls";
import { mintAccessToken } from "../lib/tokens";
import { userStub } from "../objects/shared/stubs";

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
  })
  .post("/users/:id/export", (c) => startUserJob(c, "export"))
  .post("/users/:id/erase", (c) => startUserJob(c, "erase"))
  .get("/jobs/:id", async (c) => {
    const id = c.req.param("id");
    if (!JOB_ID_RE.test(id)) throw new AppError("validation_failed", "id: invalid job id");
    const job = await findJob(c.env.DB, id);
    if (!job) throw new AppError("not_found", "no such job");
    return c.json({ job: await rendered(c, job) }, 200);
  });

/**
 * Start an export or erasure of the user in the path, or answer with the one running for them: repeating the
 * request is safe (and wakes a job that waits out a backoff). A user with a job of the other kind running gets
 * `job_running`; an erasure asked for again once done answers that job (200), as the user no longer exists.
 */
async function startUserJob(c: AppContext, kind: JobKind): Promise<Response> {
  const userId = c.req.param("id") ?? "";
  if (!USER_ID_RE.test(userId)) throw new AppError("validation_failed", "id: invalid user id");
  const db = c.env.DB;
  let job: AdminJob;
  if (await findUserById(db, userId)) job = (await startJob(db, kind, userId)).job;
  else {
    // An erasure removes the account first: while it runs, and after, the job stands for the user.
    const found = (await findRunningJob(db, userId)) ?? (kind === "erase" ? await findErasure(db, userId) : null);
    if (!found) throw new AppError("user_not_found", "no user with that id");
    job = found;
  }
  if (job.kind !== kind) throw new AppError("job_running", `an ${job.kind} job (${job.id}) is running for this user; wait until it is done`);
  if (job.state !== "running") return c.json({ job: await rendered(c, job) }, 200);
  try {
    await userStub(c.env, userId).adminJob({ id: job.id, kind: job.kind, userId, createdAt: job.createdAt });
  } catch (err) {
    console.error(JSON.stringify({ at: "admin_job_start", job: job.id, error: String(err) }));
    throw new AppError("unavailable", "the job is recorded but could not be started; repeat the request", { retryAfterMs: 1_000 });
  }
  return c.json({ job: await rendered(c, job) }, 202);
}

/** A job as the API shows it: a finished export carries its signed download link until the file is deleted. */
async function rendered(c: AppContext, job: AdminJob): Promise<AdminJob> {
  if (job.kind !== "export" || job.state !== "done" || !job.result) return job;
  const result = { ...(job.result as ExportResult) };
  if (Date.now() >= result.expiresAt) result.expired = true;
  else {
    const query = await signUrl(c.env.AUTH_SECRET, "export", job.id, job.userId, Math.floor(result.expiresAt / 1000));
    result.url = `${new URL(c.req.url).origin}/v1/exports/${job.id}?${query}`;
  }
  return { ...job, result };
}
