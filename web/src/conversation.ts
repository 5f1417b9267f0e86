// One conversation on screen: opens it through the SDK and mirrors what the views show into signals,
// refreshed (at most once a frame) on the SDK's `change` event. The SDK stays framework-free; this file
// is the only place that turns its events into signals.
import { batch, signal } from "@preact/signals";
import {
  newClientMsgId,
  quoteOf,
  tombstone,
  type ChatMessage,
  type ConnectionState,
  type Conversation,
  type ConversationInfo,
  type MessageStatus,
  type OutboxItem,
  type PublicUser,
  type TypingUser,
} from "../../client/src/index";
import { client, errorText } from "./app";
import { prepareFile } from "./attachments";
import type { Member } from "./mentions";

/** A file on its way up, shown as a progress bar in the composer. */
export interface Upload {
  key: string;
  name: string;
  loaded: number;
  total: number;
}

/** What a message says besides its body when it is sent: a reply, mentions (docs/protocol.md 15.4, 15.5). */
export interface MessageExtras {
  replyTo?: number;
  mentions?: string[];
  mentionsAll?: boolean;
}

/** The message the composer replies to, as the bar above it shows it. */
export interface ReplyTarget {
  seq: number;
  senderId: string;
  quote: string;
}

/**
 * What every message row needs besides its message: who I am, names, my powers here. One object, replaced
 * only when one of these changes, so unchanged rows keep skipping their render.
 */
export interface MessageEnv {
  store: ConversationStore;
  me: string;
  /** userId -> username, of current members. */
  names: ReadonlyMap<string, string>;
  /** username -> userId, of current members. */
  ids: ReadonlyMap<string, string>;
  members: readonly Member[];
  group: boolean;
  /** Owner or admin of a group: may delete anyone's message and mention everyone. */
  moderator: boolean;
  /** The server speaks protocol 2: edit, delete, react, reply and mention are offered. */
  changes: boolean;
}

/** One line of the message list: a stored message, or one of mine still pending or refused. */
export interface Row {
  /** Stable across pending -> stored, so keyed rendering keeps the same element. */
  key: string;
  message: ChatMessage | OutboxItem;
  mine: boolean;
  /** Ticks on my messages; null on others'. */
  status: MessageStatus | null;
  /** The sender's name on others' messages in groups. */
  sender: string | null;
  /** Receipt counts on my messages in groups. */
  detail: string | null;
  /**
   * The message's changeable state (body, edit, delete, reactions, replies, quote) as one string: a row
   * re-renders when it differs, whether the SDK replaced the message object or updated it in place.
   */
  rev: string;
}

function revOf(m: ChatMessage | OutboxItem): string {
  if (!("seq" in m)) return m.body;
  const reactions = (m.reactions ?? []).map((r) => `${r.emoji}:${r.count}:${r.me ? 1 : 0}`).join(",");
  return [m.body, m.edited?.version ?? 1, m.deleted ? 1 : 0, m.replies?.count ?? 0, m.replyTo?.quote ?? "", m.replyTo?.deleted ? 1 : 0, reactions].join("\u0001");
}

/**
 * A held message as it will be once my changes still in the outbox are stored: an edit shows its new body,
 * a delete the tombstone, a reaction its chip, at once and while offline. The stream's entries replace
 * this view as they arrive (the SDK applies them to `messages`).
 */
function withPending(m: ChatMessage, changes: readonly OutboxItem[] | undefined, me: string): ChatMessage {
  if (!changes) return m;
  let out = m;
  for (const item of changes) {
    const c = item.change;
    if (!c || out.deleted) break;
    if (c.type === "edit") out = { ...out, body: item.body, edited: { at: item.createdAt, version: (out.edited?.version ?? 1) + 1 } };
    else if (c.type === "delete") out = tombstone(out, item.createdAt, me);
    else {
      const reactions = (out.reactions ?? []).map((r) => ({ ...r }));
      const r = reactions.find((x) => x.emoji === c.emoji);
      if (c.on && !r?.me) {
        if (r) (r.count++, (r.me = true));
        else reactions.push({ emoji: c.emoji, count: 1, me: true });
      } else if (!c.on && r?.me) {
        r.count--;
        r.me = false;
      }
      out = { ...out, reactions: reactions.filter((x) => x.count > 0) };
    }
  }
  return out;
}

const CHANGE_VERBS = { edit: "edit", delete: "delete", react: "react to" } as const;

export class ConversationStore {
  readonly conv = signal<Conversation | null>(null);
  readonly info = signal<ConversationInfo | null>(null);
  readonly state = signal<ConnectionState>("connecting");
  readonly rows = signal<readonly Row[]>([]);
  readonly hasOlder = signal(false);
  readonly lastSeq = signal(0);
  readonly typing = signal<readonly TypingUser[]>([]);
  readonly error = signal("");
  /** Files being uploaded before their message is sent. */
  readonly uploads = signal<readonly Upload[]>([]);
  /** The conversation could not be opened (not found, not a member, offline on first load). */
  readonly unavailable = signal(false);
  readonly env = signal<MessageEnv | null>(null);
  /** The message the main composer replies to. */
  readonly replyTo = signal<ReplyTarget | null>(null);
  /** The parent whose thread the side pane shows. */
  readonly threadSeq = signal<number | null>(null);
  /** Sent while the conversation was still loading: in the outbox, shown as pending until it is stored. */
  private queued: OutboxItem[] = [];
  private closed = false;
  private frame = 0;
  private envKey = "";
  /** My changes still in the outbox, by the seq they change (shown at once, see withPending). */
  private pendingChanges = new Map<number, OutboxItem[]>();
  private readonly offs: (() => void)[] = [];

  constructor(
    readonly id: string,
    readonly me: PublicUser,
  ) {
    void client.open(id).then(
      (c) => {
        if (this.closed) return client.closeConversation(id);
        this.offs.push(
          c.on("change", () => this.schedule()),
          c.on("uploadProgress", (p) => this.onUploadProgress(p)),
          c.on("error", (e) => {
            if ("terminal" in e && e.terminal) this.error.value = e.code === 4403 ? "You are not a member of this conversation." : e.reason;
          }),
          client.subscribePresence((c.info?.members ?? []).map((m) => m.userId).filter((u) => u !== me.id)),
        );
        this.conv.value = c;
        this.sync();
      },
      (err: unknown) => {
        this.unavailable.value = true;
        this.error.value = errorText(err);
      },
    );
  }

  /**
   * Send, or queue while the conversation is still loading: the message goes into the SDK's outbox at
   * once, so the conversation sends it when it is live (or `flushOutbox` does over REST, even after a
   * reload), in the order it was written.
   */
  async send(body: string, extras: MessageExtras = {}): Promise<void> {
    const c = this.conv.peek();
    if (c) {
      c.setTyping(false);
      await c.send(body, extras);
      return;
    }
    const item: OutboxItem = { clientMsgId: newClientMsgId(), conversationId: this.id, userId: this.me.id, body, createdAt: client.outbox.stamp(), ...extras };
    this.queued.push(item);
    this.rows.value = [...this.rows.peek(), this.row(item, "pending")];
    await client.outbox.add(item);
    // Opened meanwhile: show it from the conversation's own outbox view (it is sent at the next pump).
    if (this.conv.peek()) this.schedule();
  }

  /**
   * Send files (with the box's text, if any) as one message through the outbox: each file is measured, the
   * message is queued with the files (IndexedDB keeps them), and the SDK uploads them, then sends it. The
   * progress bars follow the SDK's `uploadProgress` events. So an upload survives a reload: the outbox still
   * holds the message and its files, and a multipart upload resumes with only the parts that had no answer.
   */
  async sendFiles(files: readonly File[], body = "", extras: MessageExtras = {}): Promise<void> {
    if (files.length === 0) return;
    if (files.length > 10) throw new Error("At most 10 files per message.");
    const prepared = await Promise.all(files.map(prepareFile));
    const c = this.conv.peek();
    if (c) {
      c.setTyping(false);
      await c.send(body, { ...extras, attachments: prepared });
      return;
    }
    // Loading: queue it as send() does, files included.
    const item: OutboxItem = {
      clientMsgId: newClientMsgId(),
      conversationId: this.id,
      userId: this.me.id,
      body,
      createdAt: client.outbox.stamp(),
      ...extras,
      attachments: prepared.map(({ file, ...meta }) => ({ ...meta, file: file as Blob })),
    };
    this.queued.push(item);
    this.rows.value = [...this.rows.peek(), this.row(item, "pending")];
    await client.outbox.add(item);
    if (this.conv.peek()) this.schedule();
  }

  /** A queued message's file is uploading: its bar (added on its first report, dropped once uploaded, see sync). */
  private onUploadProgress(p: { clientMsgId: string; file: number; loaded: number; total: number }): void {
    const key = `${p.clientMsgId}:${p.file}`;
    const bars = this.uploads.peek();
    if (bars.some((u) => u.key === key)) {
      this.uploads.value = bars.map((u) => (u.key === key ? { ...u, loaded: p.loaded, total: p.total } : u));
      return;
    }
    const slot = this.conv.peek()?.pending.find((i) => i.clientMsgId === p.clientMsgId)?.attachments?.[p.file];
    const name = slot && "name" in slot ? slot.name : "file";
    this.uploads.value = [...bars, { key, name, loaded: p.loaded, total: p.total }];
  }

  async addMember(username: string): Promise<void> {
    const u = await client.findUser(username);
    const info = await client.addMembers(this.id, [u.id]);
    const c = this.conv.peek();
    if (c) c.info = info;
    this.schedule();
  }

  /** How long this conversation keeps messages (days; 0: forever; null: the server's default). */
  async setRetention(days: number | null): Promise<void> {
    const info = await client.setRetention(this.id, days);
    const c = this.conv.peek();
    if (c) c.info = info;
    this.schedule();
  }

  /** Replace the body of one of my messages (through the outbox, like a send). */
  edit(seq: number, body: string): void {
    this.change((c) => c.edit(seq, body));
  }

  /** Delete a message: mine, or anyone's in a group I own or administer. */
  remove(seq: number): void {
    this.change((c) => c.deleteMessage(seq));
  }

  /** Add (`on`) or take back my reaction. */
  react(seq: number, emoji: string, on: boolean): void {
    this.change((c) => c.react(seq, emoji, on));
  }

  private change(fn: (c: Conversation) => Promise<unknown>): void {
    const c = this.conv.peek();
    if (!c) return;
    this.error.value = "";
    void fn(c).then(
      () => this.schedule(),
      (err: unknown) => (this.error.value = errorText(err)),
    );
  }

  /** A held message by seq (the parent of a reply, a thread's parent), in its current state. */
  message(seq: number): ChatMessage | undefined {
    const list = this.conv.peek()?.messages ?? [];
    // Newest last: most lookups are for recent messages.
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.seq === seq) return list[i];
    return undefined;
  }

  /** One page of a thread, oldest first (docs/protocol.md 15.4). */
  async thread(seq: number, after?: number): Promise<{ parent: ChatMessage; messages: ChatMessage[]; nextAfter: number | null }> {
    const c = this.conv.peek();
    if (!c) throw new Error("The conversation is still loading.");
    return c.thread(seq, after === undefined ? { limit: 50 } : { after, limit: 50 });
  }

  /** Who reacted to a message, as names by emoji (up to 100 each: docs/protocol.md 15.3). */
  async reactors(seq: number): Promise<Map<string, string[]>> {
    const c = this.conv.peek();
    if (!c) return new Map();
    const { reactions } = await c.reactionsOf(seq);
    const names = this.env.peek()?.names;
    return new Map(reactions.map((r) => [r.emoji, r.userIds.map((u) => (u === this.me.id ? "you" : (names?.get(u) ?? "someone")))]));
  }

  /** Reply to a message from the main composer. */
  replyToMessage(m: ChatMessage): void {
    this.replyTo.value = { seq: m.seq, senderId: m.senderId, quote: quoteOf(m.body, m.attachments) };
  }

  /** The row of a message, for lists that read outside the held window (a thread's older replies). */
  rowOf(m: ChatMessage | OutboxItem): Row {
    const c = this.conv.peek();
    const names = this.env.peek()?.names;
    const group = c?.info?.type === "group";
    if (!("seq" in m)) return this.row(m, c?.failed.has(m.clientMsgId) ? "failed" : "pending");
    m = withPending(m, this.pendingChanges.get(m.seq), this.me.id);
    const mine = m.senderId === this.me.id;
    const counts = group && mine && c ? c.receiptCounts(m.seq) : null;
    return {
      key: m.clientMsgId + m.senderId,
      message: m,
      mine,
      status: mine && c ? c.statusOf(m) : null,
      sender: group && !mine ? (names?.get(m.senderId) ?? "someone") : null,
      detail: counts ? `delivered to ${counts.delivered}/${counts.of}, read by ${counts.read}/${counts.of}` : null,
      rev: revOf(m),
    };
  }

  loadOlder(): Promise<unknown> {
    return this.conv.peek()?.loadOlder() ?? Promise.resolve([]);
  }

  close(): void {
    this.closed = true;
    if (this.frame) cancelAnimationFrame(this.frame);
    for (const off of this.offs) off();
    this.conv.peek()?.setTyping(false);
    // Keep the conversation open in the client for a fast way back, but only one at a time.
    client.closeConversation(this.id);
  }

  private schedule(): void {
    this.frame ||= requestAnimationFrame(() => this.sync());
  }

  /** Copy the conversation's visible state into the signals (one batch: one render). */
  private sync(): void {
    this.frame = 0;
    const c = this.conv.peek();
    if (!c || this.closed) return;
    this.syncEnv(c);
    const rows: Row[] = [];
    const seen = new Set<string>();
    const add = (row: Row) => {
      if (seen.has(row.key)) return;
      seen.add(row.key);
      rows.push(row);
    };
    this.pendingChanges = new Map();
    for (const item of c.pendingChanges) {
      const seq = item.change!.seq;
      this.pendingChanges.set(seq, [...(this.pendingChanges.get(seq) ?? []), item]);
    }
    // A refused change (forbidden, message_deleted, …) is final: say so once, and drop it.
    for (const [id, f] of c.failedChanges) {
      const verb = f.item.change ? CHANGE_VERBS[f.item.change.type] : "change";
      this.error.value = `Could not ${verb} the message: ${f.error.message}`;
      c.discardFailed(id);
    }
    for (const m of c.messages) add(this.rowOf(m));
    for (const p of c.pending) add(this.row(p, "pending"));
    // A bar lasts while its file is still to upload in a queued message.
    const uploading = new Set(c.pending.flatMap((p) => (p.attachments ?? []).flatMap((a, i) => ("file" in a ? [`${p.clientMsgId}:${i}`] : []))));
    if (this.uploads.peek().some((u) => !uploading.has(u.key))) this.uploads.value = this.uploads.peek().filter((u) => uploading.has(u.key));
    for (const f of c.failed.values()) add(this.row(f.item, "failed"));
    // Queued before the conversation opened and not in its outbox view yet (the write may still be under way).
    this.queued = this.queued.filter((q) => !seen.has(q.clientMsgId + this.me.id));
    for (const q of this.queued) add(this.row(q, "pending"));
    batch(() => {
      this.info.value = c.info;
      this.state.value = c.state;
      this.hasOlder.value = c.hasOlder;
      this.lastSeq.value = c.lastSeq;
      const typing = c.typing;
      if (typing.map((t) => t.userId).join() !== this.typing.peek().map((t) => t.userId).join()) this.typing.value = typing;
      this.rows.value = rows;
    });
  }

  private row(item: OutboxItem, status: MessageStatus): Row {
    return { key: item.clientMsgId + this.me.id, message: item, mine: true, status, sender: null, detail: null, rev: revOf(item) };
  }

  /** A new MessageEnv only when members, roles or the protocol changed. */
  private syncEnv(c: Conversation): void {
    const members: Member[] = (c.info?.members ?? []).map((m) => ({ userId: m.userId, username: m.username, role: m.role }));
    const group = c.info?.type === "group";
    const role = members.find((m) => m.userId === this.me.id)?.role;
    const moderator = group && (role === "owner" || role === "admin");
    const changes = c.supportsChanges;
    const key = `${group}|${moderator}|${changes}|${members.map((m) => `${m.userId}:${m.username}`).join()}`;
    if (key === this.envKey) return;
    this.envKey = key;
    this.env.value = {
      store: this,
      me: this.me.id,
      names: new Map(members.map((m) => [m.userId, m.username])),
      ids: new Map(members.map((m) => [m.username, m.userId])),
      members,
      group,
      moderator,
      changes,
    };
  }
}
