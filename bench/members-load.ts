// What a bulk member add costs a large group that is online: the owner adds ADD members (at most 1,000 per call,
// protocol 6.2) to a group of SIZE members whose every member has a conversation socket open. Each socket
// receives one `members_changed` frame listing everyone added, so the object sends ADD x SIZE member entries.
// Reported: the add request's latency, when the frame reached the sockets, what a message sent at the same
// moment took to reach them (against one sent before, at rest), and the runtime's resident memory meanwhile.
//
//   npx tsx bench/members-load.ts [git ref]      SIZE=4000 ADD=1000 SOCKETS=<default SIZE> OUT=<file.json>
// (SOCKETS: how many members are online; fewer than SIZE separates the add's own work from the broadcast.)
import "./lib/env.ts";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { closeAll, conversationWsUrl, createUsers, frameType, mustApi, openSockets, parseMessageFrame, makeBody } from "./lib/client.ts";
import { log } from "./lib/env.ts";
import { paramsFor } from "./lib/params.ts";
import { Latency } from "./lib/stats.ts";
import { createSettledRoom } from "./lib/systems.ts";
import { waitFor } from "./lib/wait.ts";
import { bundleWorker, rssBytes, startEdgechat } from "./lib/workerd.ts";

const ref = process.argv[2];
const size = Number(process.env.SIZE ?? 4000);
const add = Number(process.env.ADD ?? 1000);
const online = Number(process.env.SOCKETS ?? size);
const p = paramsFor("full");
const bundle = bundleWorker(ref);
const edge = await startEdgechat({ bundle, vars: p.serverVars });
const mib = (b: number) => Math.round((b / 1048576) * 10) / 10;
try {
  const users = await createUsers(edge.url, size + add, "ml");
  const [members, joiners] = [users.slice(0, size), users.slice(size)];
  const id = await createSettledRoom(edge, members, { direct: false, tiny: false });
  const changedAt = new Float64Array(online);
  let changedBytes = 0;
  const arrivals: { n: number; ms: number }[] = [];
  const sockets = await openSockets(
    members.slice(0, online).map((u) => conversationWsUrl(edge.wsUrl, id, u.token)),
    64,
    (i) => (data, at) => {
      const type = frameType(data);
      if (type === "members_changed") {
        changedAt[i] = at;
        changedBytes = data.length;
      } else if (type === "message" && i > 1) {
        const m = parseMessageFrame(data);
        if (m) arrivals.push({ n: m.n, ms: at - m.sentAt });
      }
    },
  );
  const others = online - 2;
  const message = async (n: number) => {
    sockets[1]!.send(JSON.stringify({ type: "send", clientMsgId: `ml-${n}`, body: makeBody(1, n, p.bodyBytes) }));
    await waitFor(() => arrivals.filter((a) => a.n === n).length >= others, 120_000, `message ${n} at ${others} members`);
  };
  const latency = (n: number) => {
    const l = new Latency();
    for (const a of arrivals) if (a.n === n) l.record(a.ms);
    return l.summary();
  };
  await message(0);
  const rssBefore = rssBytes(edge.pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes(edge.pid))), 20);
  const t0 = performance.now();
  const added = mustApi(edge.url, "POST", `/v1/conversations/${id}/members`, { token: members[0]!.token, body: { userIds: joiners.map((u) => u.id) } }).then(
    () => performance.now() - t0,
  );
  await new Promise((r) => setTimeout(r, 5));
  await message(1);
  const addMs = await added;
  await waitFor(() => changedAt.every((at, i) => i === 0 || at > 0), 120_000, `members_changed at all ${online} sockets`);
  clearInterval(sampler);
  const reached = new Latency();
  for (let i = 1; i < online; i++) reached.record(changedAt[i]! - t0);
  const result = {
    build: bundle.source,
    at: new Date().toISOString(),
    size,
    add,
    online,
    addRequestMs: Math.round(addMs),
    membersChangedFrameBytes: changedBytes,
    membersChangedReached: reached.summary(),
    messageAtRest: latency(0),
    messageDuringAdd: latency(1),
    rssMiB: { before: mib(rssBefore), peak: mib(rssPeak), after: mib(rssBytes(edge.pid)) },
  };
  log(JSON.stringify(result));
  if (process.env.OUT) writeFileSync(process.env.OUT, JSON.stringify(result, null, 2));
  await closeAll(sockets);
} finally {
  await edge.stop();
  bundle.cleanup();
}
