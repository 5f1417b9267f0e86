// Test plumbing: a `ws`-backed WebSocket whose "network" can be cut, like a phone going into a tunnel.
import WebSocket from "ws";
import type { WebSocketConstructor, WebSocketLike } from "../src/index";

export class Network {
  up = true;
  readonly sockets = new Set<WebSocket>();
  readonly urls: string[] = [];

  /** A WebSocket constructor bound to this network. */
  readonly WebSocket: WebSocketConstructor = (() => {
    const net = this;
    return class extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        // While down, point at a port nothing listens on: the attempt fails like a dead network does.
        super(net.up ? url : "ws://127.0.0.1:9/", protocols);
        net.urls.push(url);
        net.sockets.add(this);
        this.on("close", () => net.sockets.delete(this));
      }
    };
  })();

  /** Cut every open socket abruptly (no close frame) and fail new ones until `restore()`. */
  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.terminate();
  }

  restore(): void {
    this.up = true;
  }
}

export type { WebSocketLike };

export async function until<T>(check: () => T | undefined | false, timeoutMs = 15_000, what = "condition"): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
