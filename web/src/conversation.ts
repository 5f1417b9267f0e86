// One conversation on screen: opens it through the SDK and mirrors what the views show into signals,
// refreshed (at most once a frame) on the SDK's `change` event. The SDK stays framework-free; this file
// is the only place that turns its events into signals.
import { batch, signal } from "@preact/signals";
import {
  newClientMsgId,
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

/** A file on its way up, shown as a progress bar in the composer. */
export interface Upload {
  key: string;
  name: string;
  loaded: number;
  total: number;
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
}

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
  /** Sent while the conversation was still loading: in the outbox, shown as pending until it is stored. */
  private queued: OutboxItem[] = [];
  private closed = false;
  private frame = 0;
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
  async send(body: string): Promise<void> {
    const c = this.conv.peek();
    if (c) {
      c.setTyping(false);
      await c.send(body);
      return;
    }
    const item: OutboxItem = { clientMsgId: newClientMsgId(), conversationId: this.id, userId: this.me.id, body, createdAt: client.outbox.stamp() };
    this.queued.push(item);
    this.rows.value = [...this.rows.peek(), this.row(item, "pending")];
    await client.outbox.add(item);
    // Opened meanwhile: show it from the conversation's own outbox view (it is sent at the next pump).
    if (this.conv.peek()) this.schedule();
  }

  /**
   * Send files (with the box's text, if any): each is measured, uploaded with `client.upload` while a
   * progress bar shows, then the message is sent with the attachment ids. When an upload cannot start
   * (offline, the conversation still loading) the files go through the outbox instead, which uploads
   * them once it can.
   */
  async sendFiles(files: readonly File[], body = ""): Promise<void> {
    if (files.length === 0) return;
    if (files.length > 10) throw new Error("At most 10 files per message.");
    const prepared = await Promise.all(files.map(prepareFile));
    const c = this.conv.peek();
    if (!c || !navigator.onLine) {
      if (c) await c.send(body, { attachments: prepared });
      else {
        // Loading: queue it as send() does, files included (the outbox keeps Blobs).
        const item: OutboxItem = {
          clientMsgId: newClientMsgId(),
          conversationId: this.id,
          userId: this.me.id,
          body,
          createdAt: client.outbox.stamp(),
          attachments: prepared.map(({ file, ...meta }) => ({ ...meta, file: file as Blob })),
        };
        this.queued.push(item);
        this.rows.value = [...this.rows.peek(), this.row(item, "pending")];
        await client.outbox.add(item);
        if (this.conv.peek()) this.schedule();
      }
      return;
    }
    const stamp = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const bars: Upload[] = prepared.map((p, i) => ({ key: `${stamp}-${i}`, name: p.name, loaded: 0, total: (p.file as Blob).size }));
    const set = (key: string, loaded: number, total: number) =>
      (this.uploads.value = this.uploads.peek().map((u) => (u.key === key ? { ...u, loaded, total } : u)));
    this.uploads.value = [...this.uploads.peek(), ...bars];
    try {
      const done = await Promise.all(
        prepared.map(({ file, ...meta }, i) =>
          client.upload(this.id, file, { ...meta, onProgress: ({ loaded, total }) => set(bars[i]!.key, loaded, total) }),
        ),
      );
      c.setTyping(false);
      await c.send(body, { attachments: done.map((a) => a.id) });
    } finally {
      const keys = new Set(bars.map((b) => b.key));
      this.uploads.value = this.uploads.peek().filter((u) => !keys.has(u.key));
    }
  }

  async addMember(username: string): Promise<void> {
    const u = await client.findUser(username);
    const info = await client.addMembers(this.id, [u.id]);
    const c = this.conv.peek();
    if (c) c.info = info;
    this.schedule();
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
    const names = new Map((c.info?.members ?? []).map((m) => [m.userId, m.username]));
    const group = c.info?.type === "group";
    const rows: Row[] = [];
    const seen = new Set<string>();
    const add = (row: Row) => {
      if (seen.has(row.key)) return;
      seen.add(row.key);
      rows.push(row);
    };
    for (const m of c.messages) {
      const mine = m.senderId === this.me.id;
      const counts = group && mine ? c.receiptCounts(m.seq) : null;
      add({
        key: m.clientMsgId + m.senderId,
        message: m,
        mine,
        status: mine ? c.statusOf(m) : null,
        sender: group && !mine ? (names.get(m.senderId) ?? "someone") : null,
        detail: counts ? `delivered to ${counts.delivered}/${counts.of}, read by ${counts.read}/${counts.of}` : null,
      });
    }
    for (const p of c.pending) add(this.row(p, "pending"));
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
    return { key: item.clientMsgId + this.me.id, message: item, mine: true, status, sender: null, detail: null };
  }
}
