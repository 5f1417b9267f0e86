// The export's download link (docs/protocol.md 17): signed, refused when altered, expired with its file, and the
// file deleted from R2 then; a file past R2's 5 MiB part size is written as a multipart upload of several parts;
// the admin routes validate what they are given and never run two jobs for one user.
import { env, runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import type { ConversationObject } from "../src/objects/conversation";
import type { UserObject } from "../src/objects/user";
import { HistoryArchive } from "../src/db/archive";
import { PART_BYTES, exportKey } from "../src/objects/user/export";
import type { ExportResult } from "../src/protocol/admin";
import { admin, download, fetchUrl, restartUser, startJob, waitForJob } from "./admin-jobs";
import { seed } from "./backlog-helpers";
import { api, archiveDb, createGroup, mintUser, sendRest } from "./helpers";
import { stubOf } from "./tiers";

const userStub = (id: string) => env.USERS.get(env.USERS.idFromName(id));

it("the download link works until it expires; an altered link is refused; the file is deleted when the link expires", async () => {
  const [dana, erin] = [await mintUser(), await mintUser()];
  const g = await createGroup(dana, [erin]);
  for (let i = 0; i < 5; i++) await sendRest(dana, g.id, `m${i}`, `dana says ${i}`);
  // Touch dana's object so the seam can be set on the live instance, then keep files for 2 s only.
  await api("GET", "/v1/me/conversations", { token: dana.token });
  await runInDurableObject(userStub(dana.id), (o: UserObject) => void (o.limits.exportTtlSeconds = 2));
  const done = await waitForJob((await startJob("export", dana.id)).id);
  expect(done.state).toBe("done");
  const result = done.result as ExportResult;
  expect(result.expiresAt).toBeGreaterThan(Date.now());
  expect(result.expiresAt).toBeLessThanOrEqual(Date.now() + 2_000);
  const url = new URL(result.url!);
  expect(url.pathname).toBe(`/v1/exports/${done.id}`);
  const { lines } = await download(done);
  expect(lines.filter((l) => l.type === "message").map((l) => l.type === "message" && l.body)).toEqual([0, 1, 2, 3, 4].map((i) => `dana says ${i}`));

  // Altered links: another user, another expiry, another job, no signature.
  const altered = (name: string, value: string | null) => {
    const u = new URL(url);
    if (value === null) u.searchParams.delete(name);
    else u.searchParams.set(name, value);
    return u.toString();
  };
  for (const bad of [altered("u", erin.id), altered("exp", String(Number(url.searchParams.get("exp")) + 3600)), altered("sig", "x".repeat(43)), altered("sig", null)]) {
    const res = await fetchUrl(bad);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_signature");
  }
  const otherJob = await fetchUrl(url.toString().replace(done.id, "job_" + "0".repeat(26)));
  expect(otherJob.status).toBe(403);
  expect((await fetchUrl(url.toString().replace(done.id, "nope"))).status).toBe(404);
  // An attachment URL's signature is worthless here (another key).
  const { signAttachment } = await import("../src/lib/signed-urls");
  const attachmentSigned = await signAttachment(env.AUTH_SECRET, done.id, dana.id, Number(url.searchParams.get("exp")));
  expect((await fetchUrl(`${url.origin}${url.pathname}?${attachmentSigned}`)).status).toBe(403);

  // Expired: the link says so, the job no longer offers it, and the cleanup job deletes the file.
  const key = exportKey(dana.id, done.id);
  expect(await env.HISTORY.head(key)).not.toBeNull();
  await new Promise((r) => setTimeout(r, Math.max(0, result.expiresAt - Date.now()) + 50));
  const expired = await fetchUrl(url.toString());
  expect(expired.status).toBe(403);
  expect(((await expired.json()) as { error: { message: string } }).error.message).toMatch(/expired/);
  const later = (await admin("GET", `/v1/admin/jobs/${done.id}`)).body.job;
  expect(later.result).toMatchObject({ expired: true, expiresAt: result.expiresAt });
  expect(later.result.url).toBeUndefined();
  for (let i = 0; i < 100 && (await env.HISTORY.head(key)) !== null; i++) await new Promise((r) => setTimeout(r, 50));
  expect(await env.HISTORY.head(key)).toBeNull();
});

it("an export larger than one R2 part is uploaded in parts, continues the same upload after a restart, and reads back whole", async () => {
  const [fay, gus] = [await mintUser(), await mintUser()];
  const g = await createGroup(fay, [gus]);
  // 700 messages of 8,000 bytes: about 5.8 MB of lines, so two parts of an R2 multipart upload.
  await seed(g.id, fay, 700, 8_000, "big");
  await stubOf(g.id).flushArchive();
  const job = await startJob("export", fay.id);
  // The user's object restarts once the first part's bytes are written: the job goes on with the same upload.
  await waitForJob(job.id, (j) => j.state !== "running" || (j.progress.bytes ?? 0) > PART_BYTES, 60_000);
  await restartUser(fay.id);
  const done = await waitForJob(job.id, undefined, 60_000);
  expect(done.state, JSON.stringify(done)).toBe("done");
  const result = done.result as ExportResult;
  expect(result.bytes).toBeGreaterThan(PART_BYTES);
  const head = (await env.HISTORY.head(exportKey(fay.id, done.id)))!;
  expect(head.size).toBe(result.bytes);
  expect(head.etag).toMatch(/-2$/); // a multipart object's ETag counts its parts
  const { lines } = await download(done);
  const messages = lines.filter((l) => l.type === "message");
  expect(messages.map((m) => m.type === "message" && m.seq)).toEqual(Array.from({ length: 700 }, (_, i) => i + 1));
  expect(messages.every((m) => m.type === "message" && m.body === "x".repeat(8_000))).toBe(true);
  expect(lines).toHaveLength(result.lines);
});

it("the admin job routes validate their input, need the secret, and run one job per user at a time", async () => {
  const [hal, ivy] = [await mintUser(), await mintUser()];
  const expectError = (r: { status: number; body: any }, status: number, code: string) => {
    expect(r.status, JSON.stringify(r.body)).toBe(status);
    expect(r.body.error.code).toBe(code);
  };
  expectError(await api("POST", `/v1/admin/users/${hal.id}/export`), 401, "unauthorized");
  expectError(await api("POST", `/v1/admin/users/${hal.id}/erase`, { headers: { Authorization: "Bearer wrong" } }), 401, "unauthorized");
  expectError(await api("GET", `/v1/admin/jobs/job_${"0".repeat(26)}`, { token: hal.token }), 401, "unauthorized");
  expectError(await admin("POST", `/v1/admin/users/${"x".repeat(65)}/export`), 400, "validation_failed");
  expectError(await admin("POST", "/v1/admin/users/bad%20id/erase"), 400, "validation_failed");
  expectError(await admin("POST", "/v1/admin/users/nobody_here/export"), 404, "user_not_found");
  expectError(await admin("POST", "/v1/admin/users/nobody_here/erase"), 404, "user_not_found");
  expectError(await admin("GET", "/v1/admin/jobs/not-a-job"), 400, "validation_failed");
  expectError(await admin("GET", `/v1/admin/jobs/job_${"0".repeat(26)}`), 404, "not_found");
  expectError(await admin("GET", `/v1/admin/users/${hal.id}/export`), 404, "not_found");

  // An export kept running (its conversation's D1 cannot be read): an erasure must wait for it.
  const g = await createGroup(hal, [ivy]);
  for (let i = 0; i < 30; i++) await sendRest(hal, g.id, `m${i}`);
  await stubOf(g.id).flushArchive();
  class Unreadable extends HistoryArchive {
    override async readMessages(): Promise<never> {
      throw new Error("D1_ERROR: simulated outage");
    }
  }
  await runInDurableObject(stubOf(g.id), async (o: ConversationObject) => void (o.archive = new Unreadable(await archiveDb(g.id))));
  const first = await admin("POST", `/v1/admin/users/${hal.id}/export`);
  expect(first.status).toBe(202);
  expect(first.body.job).toEqual({
    id: expect.stringMatching(/^job_[0-9a-z]{26}$/),
    kind: "export",
    userId: hal.id,
    state: "running",
    progress: { phase: "start", conversations: { done: 0, total: 0 }, messages: 0, reactions: 0 },
    createdAt: expect.any(Number),
    updatedAt: expect.any(Number),
  });
  await waitForJob(first.body.job.id, (j) => j.progress.lastError !== undefined);
  const repeated = await admin("POST", `/v1/admin/users/${hal.id}/export`);
  expect(repeated.status).toBe(202);
  expect(repeated.body.job.id).toBe(first.body.job.id);
  expectError(await admin("POST", `/v1/admin/users/${hal.id}/erase`), 409, "job_running");
  await runInDurableObject(stubOf(g.id), (o: ConversationObject) => void (o.archive = undefined));
  await admin("POST", `/v1/admin/users/${hal.id}/export`);
  expect((await waitForJob(first.body.job.id)).state).toBe("done");
  // Once it is done, another export is a new job.
  const next = await admin("POST", `/v1/admin/users/${hal.id}/export`);
  expect(next.status).toBe(202);
  expect(next.body.job.id).not.toBe(first.body.job.id);
  expect((await waitForJob(next.body.job.id)).state).toBe("done");
});
