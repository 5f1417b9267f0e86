// The SDK entry point: auth, REST calls, open conversations, the user socket (inbox, presence,
// receipts) and the outbox shared by all of them.
import type { Conversation as ConversationInfo, PublicUser } from "../../src/protocol/api";
import { MAX_PRESENCE_SUBSCRIPTIONS, type InboxEntry, type InboxPage, type Presence, type ReceiptCursor } from "../../src/protocol/user";
import { Auth, type Session, type SharedSessionOptions } from "./auth";
import type { BackoffOptions } from "./backoff";
import { Conversation } from "./conversation";
import { uploadItemFiles, Uploads, type FileLike, type UploadOptions, type UploadsOptions } from "./attachments";
import type { SignedUrl, UploadedAttachment } from "../../src/protocol/attachments";
import { hasPendingFiles } from "./outbox";
import { restCall } from "./sending";
import { Emitter } from "./emitter";
import { parseUserFrame } from "./frames";
import { isRetryableError } from "../../src/protocol/errors";
import { ApiError, type FetchLike, Http } from "./http";
import { IndexedDBOutboxStorage, MemoryOutboxStorage, Outbox, type OutboxStorage } from "./outbox";
import {
  ReconnectingSocket,
  type ConnectionError,
  type ConnectionState,
  type HeartbeatOptions,
  type TokenProvider,
  type WebSocketConstructor,
} from "./transport";

export interface ChatClientOptions {
  /** http(s) origin of the API, e.g. "https://chat.example.com". */
  baseUrl: string;
  /** ws(s) origin; derived from baseUrl when omitted. */
  wsUrl?: string;
  /** Required in Node < 22 (no global WebSocket): `import WebSocket from "ws"`. */
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
  /** A saved session (from `auth.on("change")`) to resume without logging in again. */
  session?: Session | null;
  /** Several instances sharing one saved session (browser tabs): serialise refreshes, adopt each other's. */
  sharedSession?: SharedSessionOptions;
  /** Bring your own tokens (e.g. minted by your backend). Called on every (re)connect and with "expired". */
  getToken?: TokenProvider;
  /** Outbox storage. Default: IndexedDB in browsers, memory elsewhere. */
  storage?: OutboxStorage;
  backoff?: BackoffOptions;
  heartbeat?: HeartbeatOptions;
  /** Messages per history page. Default 50. */
  pageSize?: number;
  /** Uploads: multipart threshold (default 8 MiB), parts in parallel (default 3), retries per request. */
  uploads?: UploadsOptions;
}

export interface PrivacySettings {
  groupAdds: "anyone" | "contacts" | "nobody";
}

export interface BlockedUser {
  userId: string;
  username: string;
  blockedAt: number;
}

export interface ChatClientEvents {
  /** State of the user socket (inbox, presence). */
  state: ConnectionState;
  inbox: { entries: InboxEntry[]; totalUnread: number };
  presence: Presence[];
  error: ConnectionError | ApiError;
}

export class ChatClient extends Emitter<ChatClientEvents> {
  readonly auth: Auth;
  readonly http: Http;
  readonly outbox: Outbox;
  readonly uploads: Uploads;
  private readonly getToken: TokenProvider;
  private readonly wsBase: string;
  private readonly conversations = new Map<string, Conversation>();
  private userSocket: ReconnectingSocket | null = null;
  private meCache: PublicUser | null = null;
  private readonly inboxEntries = new Map<string, InboxEntry>();
  private unreadTotal = 0;
  private readonly presenceMap = new Map<string, Presence>();
  private readonly presenceSubs = new Map<string, number>();

  constructor(private readonly options: ChatClientOptions) {
    super();
    const fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.auth = new Auth(options.baseUrl, fetchImpl, options.session ?? null, options.sharedSession);
    this.getToken = options.getToken ?? this.auth.getAccessToken;
    // Progress as bytes go out needs XMLHttpRequest: used for uploads unless the app brought its own fetch.
    this.http = new Http(options.baseUrl, fetchImpl, this.getToken, options.fetch === undefined);
    this.wsBase = options.wsUrl ?? options.baseUrl.replace(/^http/, "ws");
    const storage = options.storage ?? (IndexedDBOutboxStorage.isAvailable() ? new IndexedDBOutboxStorage() : new MemoryOutboxStorage());
    this.outbox = new Outbox(storage);
    this.uploads = new Uploads(this.http, options.uploads);
    this.auth.on("change", (s) => {
      if (s?.user.id !== this.meCache?.id) this.meCache = s?.user ?? null;
    });
  }

  // ------------------------------------------------------------------ users

  /** The signed-in user (from the session, or GET /v1/me with a custom token provider). */
  async me(): Promise<PublicUser> {
    this.meCache ??= this.auth.user ?? (await this.http.request<{ user: PublicUser }>("GET", "/v1/me")).user;
    return this.meCache;
  }

  async findUser(username: string): Promise<PublicUser> {
    return (await this.http.request<{ user: PublicUser }>("GET", "/v1/users", { query: { username } })).user;
  }

  async getPresence(userId: string): Promise<Presence> {
    const res = await this.http.request<Presence | { presence: Presence }>("GET", `/v1/users/${encodeURIComponent(userId)}/presence`);
    return "presence" in res ? res.presence : res;
  }

  // ------------------------------------------------------------------ consent and blocks (protocol 14)

  /** Who may add you to groups: "anyone", "contacts" (people you share a conversation with) or "nobody". */
  async settings(): Promise<PrivacySettings> {
    return (await this.http.request<{ settings: PrivacySettings }>("GET", "/v1/me/settings")).settings;
  }

  async updateSettings(settings: PrivacySettings): Promise<PrivacySettings> {
    return (await this.http.request<{ settings: PrivacySettings }>("PATCH", "/v1/me/settings", { body: settings })).settings;
  }

  /** The users you blocked, newest first. */
  async blocks(): Promise<BlockedUser[]> {
    return (await this.http.request<{ blocks: BlockedUser[] }>("GET", "/v1/me/blocks")).blocks;
  }

  /** No direct messages, group adds or presence between you and this user until you unblock them. */
  async block(userId: string): Promise<void> {
    await this.http.request<void>("PUT", `/v1/me/blocks/${encodeURIComponent(userId)}`);
  }

  async unblock(userId: string): Promise<void> {
    await this.http.request<void>("DELETE", `/v1/me/blocks/${encodeURIComponent(userId)}`);
  }

  // ------------------------------------------------------------------ conversations

  async createDirect(userId: string): Promise<ConversationInfo> {
    return (await this.http.request<{ conversation: ConversationInfo }>("POST", "/v1/conversations", { body: { type: "direct", userId } })).conversation;
  }

  async createDirectByUsername(username: string): Promise<ConversationInfo> {
    return this.createDirect((await this.findUser(username)).id);
  }

  async createGroup(title: string, memberIds: string[]): Promise<ConversationInfo> {
    return (await this.http.request<{ conversation: ConversationInfo }>("POST", "/v1/conversations", { body: { type: "group", title, memberIds } }))
      .conversation;
  }

  async getConversation(id: string): Promise<ConversationInfo> {
    return (await this.http.request<{ conversation: ConversationInfo }>("GET", `/v1/conversations/${encodeURIComponent(id)}`)).conversation;
  }

  async addMembers(id: string, userIds: string[]): Promise<ConversationInfo> {
    return (await this.http.request<{ conversation: ConversationInfo }>("POST", `/v1/conversations/${encodeURIComponent(id)}/members`, { body: { userIds } }))
      .conversation;
  }

  /**
   * How long the conversation keeps messages (protocol 16): `days` (0: forever), or null to follow the server's
   * default. A group's owner and admins, or either member of a direct conversation.
   */
  async setRetention(id: string, days: number | null): Promise<ConversationInfo> {
    return (await this.http.request<{ conversation: ConversationInfo }>("PUT", `/v1/conversations/${encodeURIComponent(id)}/retention`, { body: { days } }))
      .conversation;
  }

  async removeMember(id: string, userId: string): Promise<void> {
    await this.http.request<void>("DELETE", `/v1/conversations/${encodeURIComponent(id)}/members/${encodeURIComponent(userId)}`);
  }

  /** One page of the inbox (conversations by last activity, with unread counts). */
  async inbox(options: { cursor?: string; limit?: number } = {}): Promise<InboxPage> {
    const page = await this.http.request<InboxPage>("GET", "/v1/me/conversations", { query: options });
    if (!options.cursor) this.inboxEntries.clear();
    for (const e of page.conversations) this.inboxEntries.set(e.conversationId, e);
    this.unreadTotal = page.totalUnread;
    this.emitInbox();
    return page;
  }

  /** The inbox as last seen (REST page(s) plus live user-socket updates), newest activity first. */
  get inboxState(): { entries: InboxEntry[]; totalUnread: number } {
    return { entries: [...this.inboxEntries.values()].sort((a, b) => b.updatedAt - a.updatedAt), totalUnread: this.unreadTotal };
  }

  /** Open (connect and sync) a conversation. The same object is returned while it stays open. */
  async open(id: string): Promise<Conversation> {
    let c = this.conversations.get(id);
    if (!c) {
      const me = await this.me();
      c = new Conversation({
        id,
        userId: me.id,
        http: this.http,
        outbox: this.outbox,
        wsBaseUrl: this.wsBase,
        pageSize: this.options.pageSize ?? 50,
        uploads: this.uploads,
        userSocketStarted: () => this.userSocket !== null,
        socket: { getToken: this.getToken, WebSocket: this.options.WebSocket, backoff: this.options.backoff, heartbeat: this.options.heartbeat },
      });
      c.on("read", ({ seq }) => this.onLocalRead(id, seq));
      this.conversations.set(id, c);
    }
    try {
      return await c.open();
    } catch (err) {
      this.conversations.delete(id);
      c.close();
      throw err;
    }
  }

  /** Disconnect a conversation the app no longer shows. Its unsent messages stay in the outbox. */
  closeConversation(id: string): void {
    this.conversations.get(id)?.close();
    this.conversations.delete(id);
  }

  /**
   * Send outbox items of conversations that are not open, over REST (same clientMsgId, so a message
   * that already arrived is not stored twice). Edits, deletes and reactions go the same way, in order. Call after start-up and when the network returns.
   * Each conversation's items go one at a time, oldest first (protocol.md 10): `rate_limited` is waited
   * out and the same item resent; any other retryable failure stops that conversation's flush, so a
   * later item is never stored before an earlier one.
   */
  async flushOutbox(): Promise<number> {
    await this.outbox.load();
    const me = await this.me();
    let sent = 0;
    const stopped = new Set<string>();
    for (const queued of this.outbox.pending(me.id)) {
      if (this.conversations.has(queued.conversationId) || stopped.has(queued.conversationId)) continue;
      let item = queued;
      for (;;) {
        try {
          // Its files first (a retryable upload failure stops the conversation like a retryable send does).
          if (hasPendingFiles(item)) item = await uploadItemFiles(this.uploads, this.outbox, item);
          // A new message is a POST; an edit, delete or reaction its own route (docs/protocol.md 15).
          const call = restCall(item);
          await this.http.request(call.method, call.path, { body: call.body, query: call.query });
          await this.outbox.remove(item.clientMsgId);
          sent++;
        } catch (err) {
          const apiError = err instanceof ApiError ? err : null;
          if (apiError?.code === "rate_limited" && apiError.retryAfterMs !== undefined) {
            await new Promise((r) => setTimeout(r, apiError.retryAfterMs));
            continue;
          }
          if (!apiError || apiError.status === 401 || apiError.code === "network_error" || isRetryableError(apiError)) stopped.add(item.conversationId);
          else await this.outbox.remove(item.clientMsgId); // a final refusal: never going to be accepted
        }
        break;
      }
    }
    return sent;
  }

  // ------------------------------------------------------------------ attachments (protocol.md 13)

  /**
   * Upload a file into a conversation: one request up to `uploads.multipartThresholdBytes` (8 MiB), else a
   * resumable multipart upload. Resolves with the attachment to send (`convo.send("", { attachments: [a] })`).
   * Rejects with an UploadError (`code` from the server; `resumable` + `attachmentId` for `resumeUpload`).
   */
  upload(conversationId: string, file: FileLike, options: UploadOptions): Promise<UploadedAttachment> {
    return this.uploads.upload(conversationId, file, options);
  }

  /** Continue a multipart upload that failed or was aborted: sends only the parts the server did not answer. */
  resumeUpload(attachmentId: string, file: FileLike, options: Pick<UploadOptions, "onProgress" | "signal"> = {}): Promise<UploadedAttachment> {
    return this.uploads.resume(attachmentId, file, options);
  }

  /** Take back an upload no message references (aborts an open multipart upload). */
  deleteUpload(attachmentId: string): Promise<void> {
    return this.uploads.delete(attachmentId);
  }

  /** A signed URL for `<img src>` and links (cached until a minute before it expires). */
  attachmentUrl(attachmentId: string): Promise<SignedUrl> {
    return this.uploads.url(attachmentId);
  }

  /** Download with the bearer token; the Response streams the bytes (`Range` with `options.range`). */
  download(attachmentId: string, options?: { range?: { start: number; end?: number }; signal?: AbortSignal }): Promise<Response> {
    return this.uploads.download(attachmentId, options);
  }

  // ------------------------------------------------------------------ the user socket

  /** Connect the user socket: live inbox updates, presence and receipts while no conversation is open. */
  connect(): void {
    if (this.userSocket) return;
    const socket = new ReconnectingSocket({
      url: (token) => {
        const url = new URL("/v1/me/ws", this.wsBase);
        url.searchParams.set("v", "1");
        return url.toString();
      },
      getToken: this.getToken,
      WebSocket: this.options.WebSocket,
      backoff: this.options.backoff,
      heartbeat: this.options.heartbeat,
    });
    socket.on("state", (s) => this.emit("state", s));
    socket.on("error", (e) => this.emit("error", e));
    socket.on("open", () => this.sendPresenceSubscription());
    socket.on("frame", (raw) => this.onUserFrame(raw));
    this.userSocket = socket;
    socket.start();
  }

  get state(): ConnectionState {
    return this.userSocket?.state ?? "closed";
  }

  /** Follow these users' presence (<= 500 at once). Returns the unsubscribe function. */
  subscribePresence(userIds: string[]): () => void {
    for (const id of userIds) this.presenceSubs.set(id, (this.presenceSubs.get(id) ?? 0) + 1);
    this.sendPresenceSubscription();
    return () => {
      for (const id of userIds) {
        const n = (this.presenceSubs.get(id) ?? 1) - 1;
        if (n <= 0) this.presenceSubs.delete(id);
        else this.presenceSubs.set(id, n);
      }
      this.sendPresenceSubscription();
    };
  }

  presenceOf(userId: string): Presence | undefined {
    return this.presenceMap.get(userId);
  }

  /** Close every socket. The outbox keeps unsent messages for next time. */
  close(): void {
    this.userSocket?.stop();
    this.userSocket = null;
    for (const c of this.conversations.values()) c.close();
    this.conversations.clear();
  }

  private sendPresenceSubscription(): void {
    const userIds = [...this.presenceSubs.keys()].slice(0, MAX_PRESENCE_SUBSCRIPTIONS);
    this.userSocket?.send(JSON.stringify({ type: "presence_subscribe", userIds }));
  }

  private onUserFrame(raw: string): void {
    const frame = parseUserFrame(raw);
    if (!frame) return;
    switch (frame.type) {
      case "hello":
        this.unreadTotal = frame.totalUnread;
        this.emitInbox();
        return;
      case "inbox_update":
        this.inboxEntries.set(frame.entry.conversationId, frame.entry);
        this.unreadTotal = frame.totalUnread;
        this.emitInbox();
        return;
      case "inbox_remove":
        this.inboxEntries.delete(frame.conversationId);
        this.unreadTotal = frame.totalUnread;
        this.emitInbox();
        return;
      case "presence":
        for (const p of frame.presence) this.presenceMap.set(p.userId, p);
        this.emit("presence", frame.presence);
        return;
      case "receipts":
        this.onReceipts(frame.conversationId, frame.cursors);
        return;
      case "error":
        this.emit("error", new ApiError(frame.code, frame.message, 0));
        return;
      case "pong":
        return;
    }
  }

  private onReceipts(conversationId: string, cursors: ReceiptCursor[]): void {
    this.conversations.get(conversationId)?.mergeCursors(cursors);
  }

  private onLocalRead(conversationId: string, seq: number): void {
    // Optimistic: the server's inbox_update confirms it a moment later.
    const e = this.inboxEntries.get(conversationId);
    if (!e || e.readSeq >= seq) return;
    // Only "read everything" is known exactly here; partial reads wait for the server's count.
    if (seq < e.lastSeq) return;
    this.unreadTotal = Math.max(0, this.unreadTotal - e.unread);
    this.inboxEntries.set(conversationId, { ...e, readSeq: seq, unread: 0, unreadMentions: 0 });
    this.emitInbox();
  }

  private emitInbox(): void {
    this.emit("inbox", this.inboxState);
  }
}
