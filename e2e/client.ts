// A minimal Node-side test client: REST helpers and a `ws` socket with a frame inbox.
import WebSocket from "ws";
import type { ServerFrame, ChatMessage } from "../src/protocol/frames.ts";

export async function http<T = any>(base: string, method: string, path: string, init: { token?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (init.token) headers.Authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${base}${path}`, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

export class NodeSocket {
  readonly frames: ServerFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private listeners: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.frames.push(JSON.parse(data.toString()) as ServerFrame);
      for (const l of this.listeners) l();
    });
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
      // A server-initiated close: the close frame arrives at once, but locally the TCP teardown can lag
      // until ws's 30 s close timeout. Resolve on the close frame itself (ws moves to CLOSING with its code).
      const poll = setInterval(() => {
        const internal = ws as unknown as { _closeFrameReceived?: boolean; _closeCode?: number; _closeMessage?: Buffer };
        if (ws.readyState === WebSocket.CLOSED) clearInterval(poll);
        else if (internal._closeFrameReceived && ws.readyState === WebSocket.CLOSING) {
          clearInterval(poll);
          resolve({ code: internal._closeCode ?? 1005, reason: internal._closeMessage?.toString() ?? "" });
          ws.terminate();
        }
      }, 20);
    });
  }

  static open(url: string): Promise<NodeSocket> {
    const ws = new WebSocket(url);
    const s = new NodeSocket(ws);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(s));
      ws.once("error", reject);
    });
  }

  messages(): ChatMessage[] {
    return this.frames.flatMap((f) => (f.type === "backlog" ? f.messages : f.type === "message" ? [f.message] : []));
  }

  until<T>(check: () => T | undefined, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = () => {
        const v = check();
        if (v !== undefined) {
          clearTimeout(timer);
          this.listeners = this.listeners.filter((l) => l !== done);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== done);
        reject(new Error(`timed out; last frames: ${JSON.stringify(this.frames.slice(-3))}`));
      }, timeoutMs);
      this.listeners.push(done);
      done();
    });
  }

  frame<T extends ServerFrame["type"]>(type: T, pred: (f: Extract<ServerFrame, { type: T }>) => boolean = () => true) {
    return this.until(() => this.frames.find((f): f is Extract<ServerFrame, { type: T }> => f.type === type && pred(f as Extract<ServerFrame, { type: T }>)));
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close(1000);
    await this.closed;
  }
}
