// Shared by the backlog and storage tests: a D1 archive that is down (so every message stays in the object's hot tail,
// the case where a whole backlog could be read at once), seeding large messages, and instrumentation that
// counts what the object hands to sockets in each synchronous step.
import { env, runInDurableObject } from "cloudflare:test";
import type { ConversationObject } from "../src/objects/conversation";
import { HistoryArchive, type ArchiveRow } from "../src/db/archive";
import type { ChatMessage } from "../src/protocol/frames";
import { TestSocket, type TestUser } from "./helpers";

/** D1 refuses every archive write: nothing is archived, nothing is pruned. */
export class DownArchive extends HistoryArchive {
  override async writeMessages(_conversationId: string, _messages: ArchiveRow[]): Promise<void> {
    throw new Error("D1_ERROR: simulated outage");
  }
}

export function stubOf(conversationId: string) {
  return env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId));
}

/** Tune the object's limits (the `limits` test seam) and, optionally, take D1 down for it. */
export async function tune(conversationId: string, limits: Record<string, number>, d1Down = false): Promise<void> {
  await runInDurableObject(stubOf(conversationId), (o: ConversationObject) => {
    const seam = o as unknown as { limits?: Record<string, number>; archive: HistoryArchive | undefined };
    if (seam.limits) Object.assign(seam.limits, limits);
    if (d1Down) seam.archive = new DownArchive(env.DB);
  });
}

/** Send `count` messages of `bodyBytes` each over a socket (batches that fit a 64 KiB frame) and wait for every ack. */
export async function seed(conversationId: string, user: TestUser, count: number, bodyBytes: number, prefix = "seed"): Promise<void> {
  const s = await TestSocket.conversation(conversationId, user);
  await s.next("caught_up");
  const perFrame = Math.max(1, Math.min(50, Math.floor(60_000 / (bodyBytes + 60))));
  for (let i = 0; i < count; i += perFrame) {
    const n = Math.min(perFrame, count - i);
    s.send({ type: "send_batch", messages: Array.from({ length: n }, (_, j) => ({ clientMsgId: `${prefix}${i + j}`, body: "x".repeat(bodyBytes) })) });
  }
  for (let i = 0; i < count; i++) await s.next("ack");
  s.close();
}

/**
 * Record, for every synchronous step of the isolate (a run of JS between two microtask checkpoints), how many
 * backlog messages and bytes were handed to sockets in it. Objects and tests share the isolate here, so
 * wrapping WebSocket.prototype.send sees the object's sends.
 */
export function recordBacklogSteps(): { steps: { messages: number; bytes: number }[]; stop(): void } {
  const proto = WebSocket.prototype as unknown as { send: (m: unknown) => void };
  const original = proto.send;
  const steps: { messages: number; bytes: number }[] = [];
  let current: { messages: number; bytes: number } | null = null;
  proto.send = function (this: WebSocket, message: unknown) {
    if (typeof message === "string" && message.startsWith('{"type":"backlog"')) {
      if (!current) {
        const step = (current = { messages: 0, bytes: 0 });
        steps.push(step);
        queueMicrotask(() => {
          if (current === step) current = null;
        });
      }
      current.messages += (JSON.parse(message) as { messages: unknown[] }).messages.length;
      current.bytes += message.length;
    }
    return original.call(this, message);
  };
  return { steps, stop: () => void (proto.send = original) };
}

/** Capture console.error/warn lines (objects and tests share the isolate's console) until stop(). */
export function captureLogs(): { lines: string[]; stop(): void } {
  const lines: string[] = [];
  const { error, warn } = console;
  console.error = (...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
    error(...args);
  };
  console.warn = (...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
    warn(...args);
  };
  return { lines, stop: () => void Object.assign(console, { error, warn }) };
}
