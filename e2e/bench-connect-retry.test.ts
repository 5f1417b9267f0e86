// The load generator's connect retry (bench/lib/client.ts): a connect the server resets before answering the
// upgrade, as a saturated local runtime does to a request it has not read for 15 s (bench/README.md), is tried
// again and counted; after CONNECT_ATTEMPTS resets, or on any other failure, the call fails.
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { closeAll, connectResetTally, openSockets } from "../bench/lib/client.ts";

let server: Server | undefined;
afterEach(() => server?.close());

/** A server that resets the first `resets` upgrades (a TCP RST, no response) and accepts the rest. */
async function resettingServer(resets: number): Promise<{ url: string; upgrades: () => number }> {
  const wss = new WebSocketServer({ noServer: true });
  let upgrades = 0;
  server = createServer();
  server.on("upgrade", (req, socket, head) => {
    upgrades++;
    if (upgrades <= resets) {
      (socket as Socket).resetAndDestroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => ws.send('{"type":"caught_up","seq":0}'));
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, upgrades: () => upgrades };
}

it("a connect reset before the upgrade is answered is tried again and counted", async () => {
  const { url, upgrades } = await resettingServer(2);
  const before = connectResetTally();
  const [socket] = await openSockets([url], 1);
  expect(socket!.ws.readyState).toBe(1);
  expect(upgrades()).toBe(3);
  expect(connectResetTally() - before).toBe(2);
  await closeAll([socket!]);
});

it("three resets in a row fail the call with the reset", async () => {
  const { url, upgrades } = await resettingServer(3);
  await expect(openSockets([url], 1)).rejects.toThrow(/ECONNRESET/);
  expect(upgrades()).toBe(3);
});
