// Shared by the message-change tests: a client-side applier written from docs/protocol.md 15.6 alone (not the
// SDK's), and helpers to read the whole history and the raw stored rows.
import { env, runInDurableObject } from "cloudflare:test";
import type { ConversationObject } from "../src/objects/conversation";
import type { ChatMessage } from "../src/protocol/frames";
import { previewText } from "../src/protocol/preview";
import { api, type TestSocket, type TestUser, archiveDb } from "./helpers";

/** Apply stream entries (ascending, gapless) to a map of messages by seq, as protocol 15.6 says a client does. */
export class Applier {
  readonly messages = new Map<number, ChatMessage>();
  cursor = 0;

  constructor(readonly me: string) {}

  apply(entries: ChatMessage[]): void {
    for (const e of entries) {
      if (e.seq <= this.cursor) continue;
      if (e.seq !== this.cursor + 1) throw new Error(`gap: ${this.cursor} then ${e.seq}`);
      this.cursor = e.seq;
      const change = e.change;
      if (!change) {
        this.messages.set(e.seq, structuredClone(e));
        continue;
      }
      const target = this.messages.get(change.target);
      if (change.type === "delete") {
        if (target) this.messages.set(target.seq, tombstone(target, e));
        for (const m of this.messages.values()) if (m.replyTo?.seq === change.target && !m.deleted) m.replyTo = { seq: change.target, senderId: m.replyTo.senderId, quote: "", deleted: true };
        continue;
      }
      if (!target || target.deleted) continue;
      if (change.type === "edit") {
        if (change.body !== undefined && change.version > (target.edited?.version ?? 1)) {
          target.body = change.body;
          target.edited = { at: e.createdAt, version: change.version };
          // Replies' quotes follow their parent's edits (protocol 15.4).
          for (const m of this.messages.values()) if (m.replyTo?.seq === target.seq && !m.deleted) m.replyTo = { ...m.replyTo, quote: previewText(target.body, target.attachments) };
        }
      } else {
        const list = (target.reactions ?? []).filter((r) => r.emoji !== change.emoji);
        const had = target.reactions?.find((r) => r.emoji === change.emoji);
        if (change.count > 0) {
          const me = e.senderId === this.me ? change.on : (had?.me ?? false);
          const at = target.reactions?.findIndex((r) => r.emoji === change.emoji) ?? -1;
          list.splice(at === -1 ? list.length : at, 0, { emoji: change.emoji, count: change.count, me });
        }
        target.reactions = list.length ? list.map((r, i) => ({ r, i })).sort((a, b) => b.r.count - a.r.count || a.i - b.i).map(({ r }) => r) : undefined;
        if (!target.reactions) delete target.reactions;
      }
    }
  }

  /** Messages (not change entries), ascending, in the shape REST history returns for this user. */
  state(): ChatMessage[] {
    return [...this.messages.values()].sort((a, b) => a.seq - b.seq).map(normalise);
  }
}

function tombstone(m: ChatMessage, entry: ChatMessage): ChatMessage {
  return {
    seq: m.seq,
    id: m.id,
    senderId: m.senderId,
    clientMsgId: m.clientMsgId,
    body: "",
    createdAt: m.createdAt,
    deleted: { at: entry.createdAt, by: entry.senderId },
    ...(m.replies ? { replies: m.replies } : {}),
  };
}

/** Comparable form: `me` false and absent are the same; the thread summary (`replies`) is history's business. */
export function normalise(m: ChatMessage): ChatMessage {
  const out = structuredClone(m);
  if (out.reactions) out.reactions = out.reactions.map((r) => ({ emoji: r.emoji, count: r.count, me: r.me === true }));
  delete out.replies;
  return out;
}

/** Every entry of the conversation over REST, oldest first (forward pages). */
export async function fullHistory(user: TestUser, conversationId: string): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  let after: number | null = 0;
  while (after !== null) {
    const page: { status: number; body: { messages: ChatMessage[]; nextAfter: number | null } } = await api("GET", `/v1/conversations/${conversationId}/messages?after=${after}&limit=200`, { token: user.token });
    if (page.status !== 200) throw new Error(`history: ${page.status} ${JSON.stringify(page.body)}`);
    out.push(...page.body.messages);
    after = page.body.nextAfter;
  }
  return out;
}

/** Messages (not change entries) of the full history, normalised. */
export async function messagesOf(user: TestUser, conversationId: string): Promise<ChatMessage[]> {
  return (await fullHistory(user, conversationId)).filter((m) => !m.change).map(normalise);
}

export function stubOf(conversationId: string) {
  return env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId));
}

/** Every stored text of the conversation: the object's rows and D1's rows (body, attachments, extra). */
export async function storedText(conversationId: string): Promise<{ object: string; d1: string }> {
  const object = await runInDurableObject(stubOf(conversationId), (_o: ConversationObject, state) =>
    state.storage.sql
      .exec<{ t: string }>("SELECT body || ' ' || coalesce(attachments, '') || ' ' || coalesce(extra, '') AS t FROM messages")
      .toArray()
      .map((r) => r.t)
      .join("\n") +
    "\n" +
    state.storage.sql
      .exec<{ t: string }>("SELECT row AS t FROM d1_rewrites")
      .toArray()
      .map((r) => r.t)
      .join("\n"),
  );
  const { results } = await (await archiveDb(conversationId)).prepare("SELECT body || ' ' || coalesce(attachments, '') || ' ' || coalesce(extra, '') AS t FROM messages WHERE conversation_id = ?")
    .bind(conversationId)
    .all<{ t: string }>();
  return { object, d1: results.map((r) => r.t).join("\n") };
}

/** Send a change frame and wait for its ack (or error) on the same socket. */
export async function act(socket: TestSocket, frame: Record<string, unknown> & { clientMsgId: string }): Promise<Record<string, any>> {
  socket.send(frame);
  return socket.nextAny((f) => (f.type === "ack" || f.type === "error") && f.clientMsgId === frame.clientMsgId);
}
