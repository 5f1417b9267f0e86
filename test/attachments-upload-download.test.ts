// Attachments on the real local R2 binding: one-request and multipart uploads, the size limit refused
// before the body is read, the bytes checked against the declared image type, downloads with Range and
// ETag, authorization (uploader only until a message references it; members only), signed URLs (forged,
// expired), the per-conversation quota, the pending-upload cap and rate limit, and unreferenced uploads
// deleted after a day.
import { exports } from "cloudflare:workers";
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import { MULTIPART_PART_BYTES } from "../src/protocol/attachments";
import { signAttachment } from "../src/lib/signed-urls";
import { TestSocket, api, createGroup, mintUser, restartConversation, sendRest, type TestUser, archiveDb } from "./helpers";
import { inOneWindow } from "./limit-windows";

const BASE = "http://chat.test";
const worker = () => (exports as unknown as { default: Fetcher }).default;

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 73, 72, 68, 82, 1, 2, 3, 4, 5, 6, 7, 8]);
const TINY_JPEG_PREVIEW = `data:image/jpeg;base64,${btoa(String.fromCharCode(0xff, 0xd8, 0xff, 0xe0, 1, 2, 3))}`;

function upload(user: TestUser, conversationId: string, bytes: Uint8Array | ReadableStream, headers: Record<string, string> = {}) {
  return worker().fetch(`${BASE}/v1/conversations/${conversationId}/attachments`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${user.token}`,
      "Content-Type": "image/png",
      "X-Attachment-Name": encodeURIComponent("café photo.png"),
      ...(bytes instanceof Uint8Array ? { "Content-Length": String(bytes.byteLength) } : {}),
      ...headers,
    },
    body: bytes,
  });
}

const sha256 = async (b: Uint8Array) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", b))].map((x) => x.toString(16).padStart(2, "0")).join("");
const get = (path: string, headers: Record<string, string> = {}) => worker().fetch(`${BASE}${path}`, { headers });
const objects = async (conversationId: string) => (await env.ATTACHMENTS.list({ prefix: `c/${conversationId}/` })).objects.map((o) => o.key);

async function group(n = 2): Promise<{ owner: TestUser; other: TestUser; id: string }> {
  const owner = await mintUser();
  const others = await Promise.all(Array.from({ length: n - 1 }, () => mintUser()));
  const g = await createGroup(owner, others);
  return { owner, other: others[0]!, id: g.id };
}

it("an image uploaded in one request downloads with its type, Range and ETag; only its uploader sees it before a message references it", async () => {
  const { owner, other, id } = await group();
  const res = await upload(owner, id, PNG, { "X-Attachment-Width": "640", "X-Attachment-Height": "480", "X-Attachment-Preview": TINY_JPEG_PREVIEW });
  expect(res.status).toBe(201);
  const { attachment } = (await res.json()) as any;
  expect(attachment).toMatchObject({ name: "café photo.png", size: PNG.byteLength, contentType: "image/png", width: 640, height: 480, preview: TINY_JPEG_PREVIEW, state: "ready" });
  expect(attachment.id).toMatch(new RegExp(`^at_[0-9a-z]{26}\\.${id}$`));
  // Stored under the conversation and the id, never the file name.
  expect(await objects(id)).toEqual([`c/${id}/${attachment.id}`]);

  const full = await get(`/v1/attachments/${attachment.id}`, { Authorization: `Bearer ${owner.token}` });
  expect(full.status).toBe(200);
  expect(new Uint8Array(await full.arrayBuffer())).toEqual(PNG);
  expect(full.headers.get("Content-Type")).toBe("image/png");
  expect(full.headers.get("Content-Disposition")).toMatch(/^inline; .*filename\*=UTF-8''caf%C3%A9%20photo\.png$/);
  expect(full.headers.get("X-Content-Type-Options")).toBe("nosniff");
  expect(full.headers.get("Cache-Control")).toMatch(/^private/);
  const etag = full.headers.get("ETag")!;
  expect(etag).toBeTruthy();

  const part = await get(`/v1/attachments/${attachment.id}`, { Authorization: `Bearer ${owner.token}`, Range: "bytes=2-5" });
  expect(part.status).toBe(206);
  expect(part.headers.get("Content-Range")).toBe(`bytes 2-5/${PNG.byteLength}`);
  expect(new Uint8Array(await part.arrayBuffer())).toEqual(PNG.slice(2, 6));
  // One range, clamped to the file; past its end: 416; a form we do not serve (several ranges, bad syntax): the whole file.
  const ranged = async (range: string) => {
    const r = await get(`/v1/attachments/${attachment.id}`, { Authorization: `Bearer ${owner.token}`, Range: range });
    return [r.status, r.headers.get("Content-Range"), (await r.arrayBuffer()).byteLength];
  };
  expect(await ranged("bytes=20-100")).toEqual([206, `bytes 20-23/${PNG.byteLength}`, 4]);
  expect(await ranged("bytes=-4")).toEqual([206, `bytes 20-23/${PNG.byteLength}`, 4]);
  expect(await ranged("bytes=24-")).toEqual([416, `bytes */${PNG.byteLength}`, 0]);
  expect(await ranged("bytes=0-1,4-5")).toEqual([200, null, PNG.byteLength]);
  expect(await ranged("bytes=abc")).toEqual([200, null, PNG.byteLength]);
  const same = await get(`/v1/attachments/${attachment.id}`, { Authorization: `Bearer ${owner.token}`, "If-None-Match": etag });
  expect(same.status).toBe(304);

  // Another member: not until a message references it. A non-member: never.
  const early = await get(`/v1/attachments/${attachment.id}`, { Authorization: `Bearer ${other.token}` });
  expect(early.status).toBe(404);
  const stranger = await mintUser();
  const outside = await get(`/v1/attachments/${attachment.id}`, { Authorization: `Bearer ${stranger.token}` });
  expect(outside.status).toBe(403);
  expect(((await outside.json()) as any).error.code).toBe("not_a_member");
  expect((await get(`/v1/attachments/${attachment.id}`)).status).toBe(401);
});

it("a too-large or missing Content-Length is refused before the body is read", async () => {
  const { owner, id } = await group();
  // A body that sends 64 KiB and then stalls until the test ends: a server that read it before answering would never answer.
  let release!: () => void;
  const stalled = new Promise<void>((r) => (release = r));
  const stalling = () => {
    let sent = false;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent) {
          await stalled;
          controller.close();
          return;
        }
        sent = true;
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
  };
  try {
    const big = await upload(owner, id, stalling(), { "Content-Length": String(26 * 1024 * 1024) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as any).error.code).toBe("attachment_too_large");
    const missing = await upload(owner, id, stalling());
    expect(missing.status).toBe(411);
    expect(((await missing.json()) as any).error.code).toBe("length_required");
  } finally {
    release();
  }
  expect(await objects(id)).toEqual([]);
});

it("bytes that are not the declared image type are refused and nothing is stored; active types are only ever downloads", async () => {
  const { owner, id } = await group();
  const html = new TextEncoder().encode("<html><script>alert(1)</script></html>");
  const res = await upload(owner, id, html, { "Content-Type": "image/png" });
  expect(res.status).toBe(415);
  expect(((await res.json()) as any).error.code).toBe("unsupported_media_type");
  expect(await objects(id)).toEqual([]);
  // The same through a multipart upload: checked once its bytes are complete, and deleted.
  const mp = (await api("POST", `/v1/conversations/${id}/attachments/multipart`, { token: owner.token, body: { name: "x.png", size: html.byteLength, contentType: "image/png" } })).body;
  const part = await worker().fetch(`${BASE}/v1/attachments/${mp.attachment.id}/parts/1`, { method: "PUT", headers: { Authorization: `Bearer ${owner.token}`, "Content-Length": String(html.byteLength) }, body: html });
  const done = await api("POST", `/v1/attachments/${mp.attachment.id}/complete`, { token: owner.token, body: { parts: [await part.json()] } });
  expect(done.status).toBe(415);
  expect(await objects(id)).toEqual([]);
  // Declared as what it is, HTML is kept but only ever served as a download, never rendered from our origin.
  const honest = await upload(owner, id, html, { "Content-Type": "text/html", "X-Attachment-Name": "page.html" });
  expect(honest.status).toBe(201);
  const { attachment } = (await honest.json()) as any;
  const dl = await get(`/v1/attachments/${attachment.id}`, { Authorization: `Bearer ${owner.token}` });
  expect(dl.headers.get("Content-Type")).toBe("application/octet-stream");
  expect(dl.headers.get("Content-Disposition")).toMatch(/^attachment; filename="page.html"/);
  expect(dl.headers.get("Content-Security-Policy")).toContain("sandbox");
  await dl.arrayBuffer();
  // Bad metadata: a clear error, nothing stored.
  const bad = await upload(owner, id, PNG, { "X-Attachment-Width": "640" });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as any).error.code).toBe("validation_failed");
});

it("signed URLs download without a header until they expire; altered or expired ones get 403", async () => {
  const { owner, id } = await group();
  const { attachment } = (await (await upload(owner, id, PNG)).json()) as any;
  const signed = await api("POST", `/v1/attachments/${attachment.id}/url`, { token: owner.token });
  expect(signed.status).toBe(200);
  expect(signed.body.expiresAt).toBeGreaterThan(Date.now() + 9 * 60_000);
  const url = new URL(signed.body.url);
  const ok = await get(url.pathname + url.search);
  expect(ok.status).toBe(200);
  expect(new Uint8Array(await ok.arrayBuffer())).toEqual(PNG);

  const altered = new URLSearchParams(url.search);
  altered.set("exp", String(Number(altered.get("exp")) + 3600));
  const forged = await get(`${url.pathname}?${altered}`);
  expect(forged.status).toBe(403);
  expect(((await forged.json()) as any).error.code).toBe("invalid_signature");
  const otherAttachment = await get(`/v1/attachments/at_00000000000000000000000000.${id}${url.search}`);
  expect(otherAttachment.status).toBe(403);
  const past = Math.floor(Date.now() / 1000) - 1;
  const expired = await get(`${url.pathname}?${await signAttachment(env.AUTH_SECRET, attachment.id, owner.id, past)}`);
  expect(expired.status).toBe(403);
  expect(((await expired.json()) as any).error.message).toMatch(/expired/);
  // A non-member cannot mint one.
  const stranger = await mintUser();
  expect((await api("POST", `/v1/attachments/${attachment.id}/url`, { token: stranger.token })).status).toBe(403);
});

it("a multipart upload survives a dropped part: parts in any order, one sent again, then complete", async () => {
  const { owner, id } = await group();
  const size = MULTIPART_PART_BYTES + 1234;
  const bytes = new Uint8Array(size);
  bytes.set(PNG);
  for (let i = PNG.length; i < size; i++) bytes[i] = i % 251;
  const created = await api("POST", `/v1/conversations/${id}/attachments/multipart`, { token: owner.token, body: { name: "big.png", size, contentType: "image/png" } });
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({ partSize: MULTIPART_PART_BYTES, partCount: 2, attachment: { state: "uploading" } });
  const aid = created.body.attachment.id as string;
  const put = (n: number, chunk: Uint8Array) =>
    worker().fetch(`${BASE}/v1/attachments/${aid}/parts/${n}`, { method: "PUT", headers: { Authorization: `Bearer ${owner.token}`, "Content-Length": String(chunk.byteLength) }, body: chunk });
  const second = await put(2, bytes.slice(MULTIPART_PART_BYTES));
  expect(second.status).toBe(200);
  // A wrong-size part is refused before it is read.
  expect((await put(1, bytes.slice(0, 100))).status).toBe(400);
  const first = await put(1, bytes.slice(0, MULTIPART_PART_BYTES));
  const again = await put(1, bytes.slice(0, MULTIPART_PART_BYTES)); // the client lost the answer and resent it
  expect(again.status).toBe(200);
  const parts = [await again.json(), await second.json()];
  await first.arrayBuffer();
  // Not downloadable while uploading.
  expect((await get(`/v1/attachments/${aid}`, { Authorization: `Bearer ${owner.token}` })).status).toBe(404);
  const done = await api("POST", `/v1/attachments/${aid}/complete`, { token: owner.token, body: { parts } });
  expect(done.status).toBe(200);
  expect(done.body.attachment).toMatchObject({ size, state: "ready" });
  const dl = await get(`/v1/attachments/${aid}`, { Authorization: `Bearer ${owner.token}` });
  const got = new Uint8Array(await dl.arrayBuffer());
  expect(got.byteLength).toBe(size);
  expect(await sha256(got)).toBe(await sha256(bytes)); // never toEqual on 10 MB: a failing diff would exhaust memory
});

it("the per-conversation quota is reserved at the start of an upload; the uploader can take an upload back", async () => {
  const { owner, id } = await group();
  const start = (size: number) => api("POST", `/v1/conversations/${id}/attachments/multipart`, { token: owner.token, body: { name: "f.bin", size, contentType: "application/octet-stream" } });
  // The test server's quota is 64 MiB (vitest.config.ts).
  const a = await start(25 * 1024 * 1024);
  const b = await start(25 * 1024 * 1024);
  expect([a.status, b.status]).toEqual([201, 201]);
  const c = await start(20 * 1024 * 1024);
  expect(c.status).toBe(413);
  expect(c.body.error.code).toBe("attachment_quota_exceeded");
  expect((await api("DELETE", `/v1/attachments/${a.body.attachment.id}`, { token: owner.token })).status).toBe(204);
  expect((await start(20 * 1024 * 1024)).status).toBe(201);
  // Larger than MAX_ATTACHMENT_BYTES: refused whatever the quota.
  const huge = await start(26 * 1024 * 1024);
  expect(huge.body.error.code).toBe("attachment_too_large");
});

it("an uploader holds at most 50 unsent uploads per conversation, and uploads are rate limited per user", async () => {
  // The upload limiter counts in fixed one-minute windows: a run that a window boundary cuts is made again by a
  // fresh uploader (the limit is per user), and the assertions judge the run that fit in one window.
  const run = await inOneWindow(async () => {
    const { owner, id } = await group();
    const start = () => api("POST", `/v1/conversations/${id}/attachments/multipart`, { token: owner.token, body: { name: "f.bin", size: 10, contentType: "application/octet-stream" } });
    const first: { status: number; id?: string }[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await start();
      first.push({ status: r.status, id: r.body?.attachment?.id });
    }
    const over = await start();
    for (const f of first.slice(0, 20)) if (f.id) await api("DELETE", `/v1/attachments/${f.id}`, { token: owner.token });
    // 51 upload requests so far; the limiter allows 60 a minute.
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await start()).status);
    return { first, over, statuses };
  });
  expect(run.first.every((f) => f.status === 201)).toBe(true);
  expect(run.over.status).toBe(429);
  expect(run.over.body.error.code).toBe("too_many_uploads");
  expect(run.statuses.slice(0, 9).every((s) => s === 201)).toBe(true);
  expect(run.statuses[9]).toBe(429);
});

it("uploads no message referenced are deleted from R2 and the conversation after 24 hours", async () => {
  const { owner, id } = await group();
  const kept = (await (await upload(owner, id, PNG)).json()) as any;
  const stale = (await (await upload(owner, id, PNG)).json()) as any;
  const open = await api("POST", `/v1/conversations/${id}/attachments/multipart`, { token: owner.token, body: { name: "half.bin", size: MULTIPART_PART_BYTES + 1, contentType: "application/octet-stream" } });
  expect((await objects(id)).length).toBe(2);
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(id));
  // A day passes for two of them (the job's own schedule included).
  await runInDurableObject(stub, (_o, state) => {
    const dayAgo = Date.now() - 24 * 3600_000 - 1;
    state.storage.sql.exec("UPDATE attachments SET created_at = ? WHERE id IN (?, ?)", dayAgo, stale.attachment.id, open.body.attachment.id);
    state.storage.sql.exec("UPDATE _schedule SET at = ? WHERE kind = 'attachments'", dayAgo);
  });
  await restartConversation(id);
  await runDurableObjectAlarm(env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(id))); // a fresh stub: the old one died with the restart
  expect(await objects(id)).toEqual([`c/${id}/${kept.attachment.id}`]);
  expect((await get(`/v1/attachments/${stale.attachment.id}`, { Authorization: `Bearer ${owner.token}` })).status).toBe(404);
  expect((await get(`/v1/attachments/${kept.attachment.id}`, { Authorization: `Bearer ${owner.token}` })).status).toBe(200);
});

it("a message references attachments: members get them live, in history from both tiers, and may download them; misuse is refused", async () => {
  const { owner, other, id } = await group(3);
  const photo = ((await (await upload(owner, id, PNG, { "X-Attachment-Width": "2", "X-Attachment-Height": "3" })).json()) as any).attachment;
  const doc = ((await (await upload(owner, id, new TextEncoder().encode("%PDF-1.7 x"), { "Content-Type": "application/pdf", "X-Attachment-Name": "report.pdf" })).json()) as any).attachment;
  const watcher = await TestSocket.conversation(id, other);
  await watcher.next("caught_up");

  // Attachments only, no text: allowed. Over the socket, like any send.
  const sender = await TestSocket.conversation(id, owner);
  await sender.next("caught_up");
  sender.send({ type: "send", clientMsgId: "with-files", body: "", attachments: [photo.id, doc.id] });
  const ack = await sender.nextAny((f) => f.type === "ack" || f.type === "error");
  expect(ack).toMatchObject({ type: "ack", seq: 1 });
  const live = (await watcher.nextAny((f) => f.type === "message")) as any;
  expect(live.message.attachments).toEqual([
    { id: photo.id, name: "café photo.png", size: PNG.byteLength, contentType: "image/png", width: 2, height: 3 },
    { id: doc.id, name: "report.pdf", size: 10, contentType: "application/pdf" },
  ]);
  // Every member may read them now (before, only the uploader).
  const dl = await get(`/v1/attachments/${doc.id}`, { Authorization: `Bearer ${other.token}` });
  expect(dl.status).toBe(200);
  expect(dl.headers.get("Content-Disposition")).toMatch(/^attachment; filename="report.pdf"/);
  await dl.arrayBuffer();
  // The resend of the same clientMsgId is the same message, not a second use.
  sender.send({ type: "send", clientMsgId: "with-files", body: "", attachments: [photo.id, doc.id] });
  expect(await sender.nextAny((f) => f.type === "ack")).toMatchObject({ seq: 1, duplicate: true });

  // Misuse: one already used, someone else's, one still uploading, one of another conversation.
  const again = await sendRest(owner, id, "reuse", "again", [photo.id]);
  expect(again.status).toBe(409);
  expect(again.body.error.code).toBe("attachment_unavailable");
  const theirs = await sendRest(other, id, "not-mine", "mine?", [doc.id]);
  expect(theirs.body.error.code).toBe("attachment_unavailable");
  const half = (await api("POST", `/v1/conversations/${id}/attachments/multipart`, { token: owner.token, body: { name: "h.bin", size: 10, contentType: "application/octet-stream" } })).body.attachment;
  expect((await sendRest(owner, id, "half", "half", [half.id])).body.error.message).toMatch(/still uploading/);
  const elsewhere = await group();
  const foreign = ((await (await upload(elsewhere.owner, elsewhere.id, PNG)).json()) as any).attachment;
  expect((await sendRest(owner, id, "foreign", "x", [foreign.id])).body.error.code).toBe("attachment_unavailable");
  expect((await sendRest(owner, id, "empty", "", [])).status).toBe(400); // no body and no attachments

  // The inbox previews a message of files by its first file's name.
  let entry: any;
  for (let i = 0; i < 50 && entry?.lastSeq !== 1; i++) {
    entry = (await api("GET", "/v1/me/conversations", { token: other.token })).body.conversations.find((c: any) => c.conversationId === id);
    if (entry?.lastSeq !== 1) await new Promise((r) => setTimeout(r, 100));
  }
  expect(entry.lastMessage.preview).toBe("📎 café photo.png +1");

  // History, hot and then from D1 once the message is archived and pruned (the test server keeps 20 hot).
  const hot = await api("GET", `/v1/conversations/${id}/messages?after=0&limit=1`, { token: other.token });
  expect(hot.body.messages[0].attachments).toHaveLength(2);
  for (let i = 0; i < 30; i++) await sendRest(owner, id, `fill-${i}`, `fill ${i}`);
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(id));
  await stub.flushArchive();
  const archived = await (await archiveDb(id)).prepare("SELECT attachments FROM messages WHERE conversation_id = ? AND seq = 1").bind(id).first<{ attachments: string }>();
  expect(JSON.parse(archived!.attachments)).toHaveLength(2);
  const cold = await api("GET", `/v1/conversations/${id}/messages?after=0&limit=1`, { token: other.token });
  expect(cold.body.messages[0]).toMatchObject({ seq: 1, body: "", attachments: live.message.attachments });
  [watcher, sender].forEach((s) => s.close());
});

it("deleting a message deletes its attachments from R2: the download is gone for everyone, even from a signed URL", async () => {
  const { owner, other, id } = await group();
  const up = await upload(owner, id, PNG);
  const { attachment } = (await up.json()) as any;
  expect((await sendRest(owner, id, "with-file", "look", [attachment.id])).status).toBe(201);
  const signed = (await api("POST", `/v1/attachments/${attachment.id}/url`, { token: other.token })).body.url as string;
  expect((await get(new URL(signed).pathname + new URL(signed).search)).status).toBe(200);

  const del = await api("DELETE", `/v1/conversations/${id}/messages/1`, { token: owner.token });
  expect(del.status).toBe(201);
  // Unreadable from the delete on (the row is `expiring`), and gone from R2 once the collection job ran.
  expect((await get(`/v1/attachments/${attachment.id}`, { Authorization: `Bearer ${other.token}` })).status).toBe(404);
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(id));
  for (let i = 0; i < 5 && (await objects(id)).length > 0; i++) await runDurableObjectAlarm(stub);
  expect(await objects(id)).toEqual([]);
  expect((await get(new URL(signed).pathname + new URL(signed).search)).status).toBe(404);
  const history = await api("GET", `/v1/conversations/${id}/messages`, { token: other.token });
  expect(history.body.messages[0]).toMatchObject({ seq: 1, body: "", deleted: { by: owner.id } });
  expect(history.body.messages[0].attachments).toBeUndefined();
});
