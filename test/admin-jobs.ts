// Shared by the admin export and erasure tests (docs/protocol.md 17): the admin calls, waiting for a job, reading an
// export back through its download link, and one user's data spread over three conversations and all three tiers.
import { exports } from "cloudflare:workers";
import { env, runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import type { AdminJob, ExportLine } from "../src/protocol/admin";
import type { ChatMessage } from "../src/protocol/frames";
import { TestSocket, api, createDirect, createGroup, mintUser, uniq, type ApiResult, type TestUser } from "./helpers";
import { fullHistory } from "./message-changes";
import { stubOf, tiers, where } from "./tiers";

const BASE = "http://chat.test";
const worker = () => (exports as unknown as { default: Fetcher }).default;

export function admin<T = any>(method: string, path: string): Promise<ApiResult<T>> {
  return api<T>(method, path, { headers: { Authorization: `Bearer ${env.ADMIN_SECRET}` } });
}

/** Start a job (or find the running one) and return it. */
export async function startJob(kind: "export" | "erase", userId: string): Promise<AdminJob> {
  const r = await admin("POST", `/v1/admin/users/${userId}/${kind}`);
  if (r.status !== 202 && r.status !== 200) throw new Error(`${kind}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.job;
}

/** Poll the job's status until `until` holds (default: it is no longer running). */
export async function waitForJob(id: string, until: (job: AdminJob) => boolean = (j) => j.state !== "running", timeoutMs = 20_000): Promise<AdminJob> {
  const started = Date.now();
  for (;;) {
    const r = await admin("GET", `/v1/admin/jobs/${id}`);
    expect(r.status).toBe(200);
    const job = r.body.job as AdminJob;
    if (until(job)) return job;
    if (Date.now() - started > timeoutMs) throw new Error(`job ${id} still ${JSON.stringify(job)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** GET a URL (absolute, as the API gives it) through the Worker, with no header. */
export function fetchUrl(url: string): Promise<Response> {
  const u = new URL(url);
  return worker().fetch(`${BASE}${u.pathname}${u.search}`);
}

/** The export file behind a finished job's link, as text and as parsed lines. */
export async function download(job: AdminJob): Promise<{ text: string; lines: ExportLine[] }> {
  const url = (job.result as { url?: string } | undefined)?.url;
  if (!url) throw new Error(`no download link: ${JSON.stringify(job)}`);
  const res = await fetchUrl(url);
  expect(res.status).toBe(200);
  const text = new TextDecoder().decode(await res.arrayBuffer());
  expect(text.endsWith("\n")).toBe(true);
  return { text, lines: text.trimEnd().split("\n").map((l) => JSON.parse(l) as ExportLine) };
}

/** Restart a user's object, as a crash or a deploy would (its storage stays, its alarm fires again). */
export async function restartUser(userId: string): Promise<void> {
  await runInDurableObject(env.USERS.get(env.USERS.idFromName(userId)), (_o, state) => state.abort("test: restart")).catch(() => undefined);
}

export const pad = (i: number) => String(i).padStart(4, "0");

export interface Seeded {
  alice: TestUser;
  bob: TestUser;
  /** The user exported or erased; signed up with a password. Every body they wrote contains `SECRET-`. */
  carol: TestUser & { password: string; refreshToken: string };
  g1: string;
  g2: string;
  dm: string;
  /** Seqs in g1 of carol's messages in each tier after seeding. */
  tiersOfCarol: { cold: number; warm: number; hot: number };
  attachmentKey: string;
}

/** `user` sends `n` messages `<prefix>-<i>` (i from `from`) in one batch and waits for their acks. */
async function say(socket: TestSocket, prefix: string, from: number, n: number, extra: Record<string, unknown> = {}): Promise<void> {
  // The clientMsgId stays on a tombstone (protocol 15.2): only the body carries the marker.
  const id = prefix.replace("SECRET", "carol");
  socket.send({ type: "send_batch", messages: Array.from({ length: n }, (_, k) => ({ clientMsgId: `${id}-${from + k}`, body: `${prefix}-${pad(from + k)}`, ...extra })) });
  for (let k = 0; k < n; k++) await socket.next("ack");
}

/**
 * carol in two groups (g1: a member; g2: the owner) and a direct conversation with bob, ~380 entries in all:
 * g1 240 messages (rounds of alice 10, bob 10, carol 10: carol's are 21-30, 51-60, ...) spread over R2 (1-150),
 * D1 (151-240) and the hot tail; g2 120 (alice 10, carol 10). carol edited and deleted messages in each tier of
 * g1, reacted to alice's in each tier, bob reacted to one of carol's, alice replied to one, and carol sent a file
 * in g2.
 */
export async function seedCarol(): Promise<Seeded> {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const username = uniq("c").toLowerCase().slice(0, 32);
  const password = "correct horse battery";
  const signup = await api("POST", "/v1/auth/signup", { body: { username, password } });
  expect(signup.status).toBe(201);
  const carol = { id: signup.body.user.id, username, token: signup.body.accessToken, password, refreshToken: signup.body.refreshToken };
  const g1 = (await createGroup(alice, [bob, carol], "g1")).id;
  const g2 = (await createGroup(carol, [alice], "g2")).id;
  const dm = (await createDirect(carol, bob)).body.conversation.id;
  for (const id of [g1, g2]) await tiers(id, { warmMessages: 60, segmentMessages: 50 });

  const sockets = async (id: string, users: TestUser[]) =>
    Promise.all(
      users.map(async (u) => {
        const s = await TestSocket.conversation(id, u, { v: 2 });
        await s.next("caught_up");
        return s;
      }),
    );
  const [a1, b1, c1] = await sockets(g1, [alice, bob, carol]);
  for (let r = 0; r < 8; r++) {
    await say(a1!, "alice-g1", r * 10, 10);
    await say(b1!, "bob-g1", r * 10, 10);
    await say(c1!, "SECRET-g1", r * 10, 10, r === 7 ? { mentions: [alice.id] } : {});
  }
  const [a2, c2] = await sockets(g2, [alice, carol]);
  for (let r = 0; r < 6; r++) {
    await say(a2!, "alice-g2", r * 10, 10);
    await say(c2!, "SECRET-g2", r * 10, 10);
  }
  const [cd, bd] = await sockets(dm, [carol, bob]);
  await say(cd!, "SECRET-dm", 0, 10);
  await say(bd!, "bob-dm", 0, 10);
  for (const s of [a1, b1, c1, a2, c2, cd, bd]) s!.close();
  for (const id of [g1, g2]) await stubOf(id).flushArchive();

  const as = (u: TestUser, method: string, path: string, body?: unknown) => api(method, `/v1/conversations/${g1}/messages/${path}`, { token: u.token, body });
  const ok = (r: ApiResult) => expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  // carol edits and deletes in every tier of g1 (21-25 cold, 171-175 warm, 231-235 hot)...
  for (const seq of [21, 171, 231]) ok(await as(carol, "PATCH", `${seq}`, { clientMsgId: `e${seq}`, body: `SECRET-edited-${seq}` }));
  for (const seq of [21, 171]) ok(await as(carol, "PATCH", `${seq}`, { clientMsgId: `e2-${seq}`, body: `SECRET-edited-again-${seq}` }));
  for (const seq of [22, 172, 232]) ok(await as(carol, "DELETE", `${seq}?clientMsgId=d${seq}`));
  // ... reacts to alice's messages in every tier, and is reacted to; alice replies to one of hers.
  for (const seq of [1, 151, 221]) ok(await as(carol, "PUT", `${seq}/reactions/%F0%9F%91%8D?clientMsgId=r${seq}`));
  ok(await as(bob, "PUT", `23/reactions/%F0%9F%8E%89?clientMsgId=rb23`));
  ok(await api("POST", `/v1/conversations/${g1}/messages`, { token: alice.token, body: { clientMsgId: "reply-24", body: "alice-reply", replyTo: 24 } }));
  // A file in g2.
  const up = await worker().fetch(`${BASE}/v1/conversations/${g2}/attachments`, {
    method: "POST",
    headers: { Authorization: `Bearer ${carol.token}`, "Content-Type": "text/plain", "Content-Length": "15", "X-Attachment-Name": "SECRET-file.txt" },
    body: "SECRET-contents",
  });
  expect(up.status).toBe(201);
  const attachment = ((await up.json()) as { attachment: { id: string } }).attachment;
  ok(await api("POST", `/v1/conversations/${g2}/messages`, { token: carol.token, body: { clientMsgId: "file", body: "SECRET-with-file", attachments: [attachment.id] } }));
  for (const id of [g1, g2]) await stubOf(id).flushArchive();

  // Every tier holds some of carol's messages.
  const g1Tiers = await where(g1);
  expect(g1Tiers.segments.length).toBeGreaterThan(0);
  expect(g1Tiers.d1.length).toBeGreaterThan(0);
  expect(g1Tiers.hot.length).toBeGreaterThan(0);
  return { alice, bob, carol, g1, g2, dm, tiersOfCarol: { cold: 21, warm: 171, hot: 231 }, attachmentKey: `c/${g2}/${attachment.id}` };
}

/** `userId`'s messages (not change entries) of a conversation as `reader` reads its history, without `me` on reactions. */
export async function messagesBy(reader: TestUser, conversationId: string, userId: string): Promise<ChatMessage[]> {
  return (await fullHistory(reader, conversationId)).filter((m) => m.senderId === userId && !m.change).map(withoutMe);
}

export function withoutMe(m: ChatMessage): ChatMessage {
  return m.reactions ? { ...m, reactions: m.reactions.map(({ emoji, count }) => ({ emoji, count })) } : m;
}

/** Every row of every table of a Durable Object's SQLite, as text (to look for what must be gone). */
export async function storageText<T extends Rpc.DurableObjectBranded | undefined>(stub: DurableObjectStub<T>): Promise<string> {
  return runInDurableObject(stub, (_o, state) => {
    const sql = state.storage.sql;
    const tables = sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").toArray();
    return tables.map(({ name }) => `${name}: ${JSON.stringify(sql.exec(`SELECT * FROM "${name}"`).toArray())}`).join("\n");
  });
}

/** Rows per table of a Durable Object's SQLite (tables with none left out). */
export async function rowCounts<T extends Rpc.DurableObjectBranded | undefined>(stub: DurableObjectStub<T>): Promise<Record<string, number>> {
  return runInDurableObject(stub, (_o, state) => {
    const sql = state.storage.sql;
    const out: Record<string, number> = {};
    for (const { name } of sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").toArray()) {
      const n = sql.exec<{ n: number }>(`SELECT count(*) AS n FROM "${name}"`).one().n;
      if (n > 0) out[name] = n;
    }
    return out;
  });
}
