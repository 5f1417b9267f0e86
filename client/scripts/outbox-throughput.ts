// How fast the SDK's outbox gets a burst stored, and whether the sender's order survives: N messages sent
// at once (nobody awaits the previous send), timed until every one is acknowledged. Starts its own local
// server (127.0.0.1). With --rate/--burst the server's send limit applies (default: lifted, as in tests).
//
//   npx tsx client/scripts/outbox-throughput.ts --messages 2000
//   npx tsx client/scripts/outbox-throughput.ts --messages 60 --rate 10 --burst 20    # the default limit
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { startLocalServer } from "../../e2e/server.ts";
import { ChatClient, MemoryOutboxStorage } from "../src/index";

const { values } = parseArgs({ options: { messages: { type: "string" }, rate: { type: "string" }, burst: { type: "string" }, rounds: { type: "string" } } });
const n = Number(values.messages ?? 2000);
const rounds = Number(values.rounds ?? 3);
const vars: Record<string, string> = values.rate ? { SEND_RATE_PER_SECOND: values.rate, SEND_BURST: values.burst ?? values.rate } : {};

const waitFor = (check: () => boolean) =>
  new Promise<void>((resolve) => {
    const t = setInterval(() => {
      if (check()) {
        clearInterval(t);
        resolve();
      }
    }, 2);
  });

const server = await startLocalServer({ vars });
try {
  const sfx = Date.now().toString(36);
  const client = () => new ChatClient({ baseUrl: server.url, WebSocket, storage: new MemoryOutboxStorage() });
  const [alice, bob] = [client(), client()];
  await alice.auth.signup(`alice_${sfx}`, "correct horse battery");
  await bob.auth.signup(`bob_${sfx}`, "correct horse battery");
  const convo = await alice.open((await alice.createDirectByUsername(`bob_${sfx}`)).id);
  await new Promise<void>((r) => convo.on("synced", () => r()));
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    const items = await Promise.all(Array.from({ length: n }, (_, i) => convo.send(`round ${round} message ${i}`)));
    await waitFor(() => convo.pending.length === 0);
    const ms = performance.now() - started;
    // Message frames follow the acks: wait for all of them, then compare with the order of the send() calls.
    const ids = new Set(items.map((i) => i.clientMsgId));
    const mine = () => convo.messages.filter((m) => ids.has(m.clientMsgId)).map((m) => m.clientMsgId);
    await waitFor(() => mine().length === n);
    const ordered = mine().join() === items.map((i) => i.clientMsgId).join();
    console.log(`round ${round}: ${n} messages acked in ${ms.toFixed(0)} ms (${((n / ms) * 1000).toFixed(0)} msg/s), sender order kept: ${ordered}, failed: ${convo.failed.size}`);
    // Let the bucket refill between rounds.
    await new Promise((r) => setTimeout(r, values.rate ? 3000 : 200));
  }
  alice.close();
  bob.close();
} finally {
  await server.stop();
}
process.exit(0);
