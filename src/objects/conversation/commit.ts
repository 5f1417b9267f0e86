// The hot path: persist, then acknowledge, then broadcast. Read top to bottom, it is the whole life of
// a sent message. Everything here is synchronous SQL on this object's storage: no await, no D1, no RPC.
//
// Group commit: workerd commits (and fsyncs) once per event, so one message per event caps an object at
// ~2,000 msg/s and lets busy sockets starve quiet ones. Socket sends are queued and persisted together
// in one zero-delay timer event: one commit for all of them. The output gate holds every frame sent in
// that event until the commit is durable, so no one hears of an unsaved message.
import type { ChangeRequest, ChatMessage, OutgoingMessage } from "../../protocol/frames";
import type { SendResult } from "../../protocol/api";
import { AppError } from "../../lib/errors";
import type { Archiver } from "./archive";
import { isLive, type Sockets } from "./connections";
import type { Cursors } from "./cursors";
import type { Fanout } from "./fanout";
import type { Members } from "./members";
import type { Meta } from "./meta";
import type { Changes } from "./changes";
import { wire, type AppendResult, type MessageStream, type StoredMessage } from "./stream";

/** A socket frame waiting for the group commit: messages to send, or one change (edit, delete, reaction). */
type PendingSend = { ws: WebSocket; userId: string } & ({ items: OutgoingMessage[] } | { change: ChangeRequest });

export class CommitPath {
  readonly #meta: Meta;
  readonly #members: Members;
  readonly #stream: MessageStream;
  readonly #cursors: Cursors;
  readonly #sockets: Sockets;
  readonly #archiver: Archiver;
  readonly #fanout: Fanout;
  readonly #changes: Changes;
  /** Socket sends waiting for the next group commit. Lost on a crash: unacked, so clients resend. */
  #pending: PendingSend[] = [];
  #flushScheduled = false;

  constructor(parts: {
    meta: Meta;
    members: Members;
    stream: MessageStream;
    cursors: Cursors;
    sockets: Sockets;
    archiver: Archiver;
    fanout: Fanout;
    changes: Changes;
  }) {
    this.#changes = parts.changes;
    this.#meta = parts.meta;
    this.#members = parts.members;
    this.#stream = parts.stream;
    this.#cursors = parts.cursors;
    this.#sockets = parts.sockets;
    this.#archiver = parts.archiver;
    this.#fanout = parts.fanout;
  }

  /** A socket sent messages: they join the next group commit. */
  enqueue(ws: WebSocket, userId: string, items: OutgoingMessage[]): void {
    this.#queue({ ws, userId, items });
  }

  /** A socket asked for a change: it joins the next group commit, in order with the socket's sends. */
  enqueueChange(ws: WebSocket, userId: string, change: ChangeRequest): void {
    this.#queue({ ws, userId, change });
  }

  #queue(entry: PendingSend): void {
    this.#pending.push(entry);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Sends that arrive while this timer is pending are persisted in its one event. The timer exists
    // only while sends are pending, so it never keeps an idle object from hibernating.
    setTimeout(() => this.#flush(), 0);
  }

  /** One message over REST (servers, bots): the same rules and idempotency as the socket, committed in this event. */
  sendOne(senderId: string, message: OutgoingMessage): SendResult {
    const result = this.#stream.atomically(() => {
      const results = this.#stream.append(senderId, [message], Date.now(), this.#changes);
      // Sending marks the conversation read (and delivered) up to your own message, in the same commit.
      const seq = newestFresh(results);
      if (seq > 0) this.#cursors.advance(senderId, seq, seq);
      return results[0]!;
    });
    if ("error" in result) throw new AppError(result.error.code, result.error.message, { retryAfterMs: result.error.retryAfterMs });
    this.#publish(result.fresh);
    return result.ack;
  }

  /** One change over REST: the same rules and idempotency as the socket's frames, committed in this event. */
  changeOne(senderId: string, change: ChangeRequest): SendResult {
    const result = this.#stream.atomically(() => this.#changes.apply(senderId, change, Date.now()));
    if ("error" in result) throw new AppError(result.error.code, result.error.message, { retryAfterMs: result.error.retryAfterMs });
    this.#publish(result.fresh);
    return result.ack;
  }

  /**
   * Entries the server makes itself (an erasure's deletes and taken-back reactions, protocol 17): `body` stores
   * them inside one transaction; they are then published like any other entry. Returns how many were stored.
   */
  system(body: () => StoredMessage[]): number {
    const fresh = this.#stream.atomically(body).map(wire);
    this.#publish(fresh);
    return fresh.length;
  }

  /**
   * Persist every queued send (each sender's batch in its own transaction), ack each to its own socket,
   * then broadcast them all. Per-socket order is kept: the queue is FIFO.
   */
  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    const fresh: ChatMessage[] = [];
    const senderSeqs = new Map<string, number>();
    for (const entry of batch) {
      const named = "items" in entry ? entry.items : [entry.change];
      if (!this.#members.has(entry.userId)) {
        // Removed between sending and this flush: nothing is stored, the socket is already being closed.
        for (const item of named) {
          this.#sockets.send(entry.ws, { type: "error", code: "not_a_member", message: "you are not a member of this conversation", clientMsgId: item.clientMsgId });
        }
        continue;
      }
      let results: AppendResult[];
      try {
        results = this.#stream.atomically(() =>
          "items" in entry ? this.#stream.append(entry.userId, entry.items, Date.now(), this.#changes) : [this.#changes.apply(entry.userId, entry.change, Date.now())],
        );
      } catch (err) {
        // Nothing of this entry was stored (its transaction rolled back); the client retries with the same ids.
        console.error(JSON.stringify({ at: "persist", conversation: this.#meta.id, error: String(err) }));
        for (const item of named) {
          this.#sockets.send(entry.ws, { type: "error", code: "internal_error", message: "could not store the message; retry", clientMsgId: item.clientMsgId });
        }
        continue;
      }
      for (const r of results) {
        if ("error" in r) this.#sockets.send(entry.ws, { type: "error", ...r.error });
        else {
          this.#sockets.send(entry.ws, { type: "ack", ...r.ack });
          fresh.push(...r.fresh);
          // Sending marks read up to your own message; a change does not (it may be far back).
          if (!r.ack.duplicate && "items" in entry) senderSeqs.set(entry.userId, Math.max(senderSeqs.get(entry.userId) ?? 0, r.ack.seq));
        }
      }
    }
    // Sending marks read up to your own message: one cursor write per sender per flush, not per message.
    for (const [userId, seq] of senderSeqs) this.#cursors.advance(userId, seq, seq);
    this.#publish(fresh);
  }

  /** Push new messages to every live socket (the sender's too: its stream stays gapless); then live inbox events; archive and fan out later. */
  #publish(messages: ChatMessage[]): void {
    if (messages.length === 0) return;
    for (const m of messages) this.#sockets.broadcast({ type: "message", message: m }, isLive);
    this.#archiver.schedule();
    this.#fanout.published(messages);
  }
}

/** The seq of the last message an append stored (0 if it stored none). */
function newestFresh(results: AppendResult[]): number {
  let seq = 0;
  for (const r of results) if ("ack" in r && !r.ack.duplicate) seq = r.ack.seq;
  return seq;
}
