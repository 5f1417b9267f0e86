// Scenario 7: the inbox (GET /v1/me/conversations, contract InboxPage in src/protocol/user.ts) for a
// user in N conversations. The per-user object may not exist in this build: then the route is a 404
// and the result says "not available in this build" instead of a number.
import { performance } from "node:perf_hooks";
import type { InboxPage } from "../../src/protocol/user.ts";
import { api, createGroup, createUsers, mustApi, pMap } from "../lib/client.ts";
import { log, sleep } from "../lib/env.ts";
import { Latency, type LatencySummary } from "../lib/stats.ts";
import type { BenchContext } from "../lib/systems.ts";

export type InboxResult =
  | { available: false; note: string; status: number }
  | {
      available: true;
      conversations: number;
      firstPage: LatencySummary;
      firstPageSize: number;
      totalUnread: number;
      /** Distinct conversations found paging through the whole inbox with `cursor`; must equal `conversations`. */
      listed: number;
      badResponses: number;
    };

async function listAll(base: string, token: string): Promise<Set<string>> {
  const seen = new Set<string>();
  let cursor: string | null = null;
  for (let i = 0; i < 1000; i++) {
    const q: string = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
    const page: InboxPage = await mustApi<InboxPage>(base, "GET", `/v1/me/conversations${q}`, { token });
    for (const c of page.conversations) seen.add(c.conversationId);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return seen;
}

export async function runInbox(ctx: BenchContext): Promise<InboxResult> {
  const p = ctx.params.s7;
  const probe = await api(ctx.edge.url, "GET", "/v1/me/conversations", { token: ctx.users[0]!.token });
  if (probe.status === 404) {
    log("s7: GET /v1/me/conversations is 404: not available in this build");
    return { available: false, note: "not available in this build (GET /v1/me/conversations returned 404)", status: 404 };
  }
  const [me, peer] = await createUsers(ctx.edge.url, 2, `s7${Date.now().toString(36)}`);
  const ids = await pMap(Array.from({ length: p.conversations }, (_, i) => i), 8, (i) => createGroup(ctx.edge.url, me!, [me!, peer!], `inbox ${i}`));
  // One message from the peer in each, so every entry has a lastMessage and an unread count.
  await pMap(ids, 8, (id, i) =>
    mustApi(ctx.edge.url, "POST", `/v1/conversations/${id}/messages`, { token: peer!.token, body: { clientMsgId: `i-${i}`, body: `hello ${i}` } }),
  );
  // The inbox is fed asynchronously (coalesced fan-out): wait until it lists every conversation.
  let listed = 0;
  for (let t = 0; t < 30; t++) {
    listed = (await listAll(ctx.edge.url, me!.token)).size;
    if (listed >= p.conversations) break;
    await sleep(500);
  }
  const lat = new Latency();
  let firstPageSize = 0;
  let totalUnread = 0;
  let bad = 0;
  for (let i = 0; i < p.warmup + p.requests; i++) {
    const s = performance.now();
    const r = await api<InboxPage>(ctx.edge.url, "GET", "/v1/me/conversations", { token: me!.token });
    const ms = performance.now() - s;
    if (i >= p.warmup) lat.record(ms);
    if (r.status !== 200 || !Array.isArray(r.body?.conversations)) {
      bad++;
      continue;
    }
    firstPageSize = r.body.conversations.length;
    totalUnread = r.body.totalUnread;
  }
  const result: InboxResult = { available: true, conversations: p.conversations, firstPage: lat.summary(), firstPageSize, totalUnread, listed, badResponses: bad };
  log(`s7: first page p50 ${result.firstPage.p50} ms p99 ${result.firstPage.p99} ms (${firstPageSize} entries)`);
  return result;
}
