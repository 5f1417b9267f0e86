// The offline outbox: every send is stored with its clientMsgId before it is attempted, and stays until
// the server acknowledges it. The server deduplicates by clientMsgId, so retrying is always safe.
import { ClientMsgIdSchema } from "../../src/protocol/frames";
import * as v from "valibot";

export interface OutboxItem {
  clientMsgId: string;
  conversationId: string;
  /** The sender: an outbox shared by several accounts on one device only flushes the signed-in user's items. */
  userId: string;
  body: string;
  /** Local time of the send() call, ms; strictly increasing per device (Outbox.stamp), so it is the send order. */
  createdAt: number;
  /**
   * Files of the message, in order: an uploaded attachment's id, or a file still to upload (the message is
   * not sent before every file of it is uploaded; each slot becomes `{ id }` when its upload completes).
   */
  attachments?: OutboxAttachment[];
  /** The message this one replies to (docs/protocol.md 15.4). */
  replyTo?: number;
  /** Members mentioned by id (15.5). */
  mentions?: string[];
  /** Mentions every member (groups: owners and admins only). */
  mentionsAll?: boolean;
  /**
   * Set on a change to an earlier message (15): an edit, a delete or a reaction. Such an item is not a new
   * message (`convo.pending` leaves it out, `convo.pendingChanges` lists it) but it waits in the same
   * outbox, in the order the user acted, and goes as its own frame (`edit`, `delete`, `react`). `body` is
   * the new body of an edit, "" otherwise.
   */
  change?: OutboxChange;
}

export type OutboxChange =
  | { type: "edit"; seq: number }
  | { type: "delete"; seq: number }
  | { type: "react"; seq: number; emoji: string; on: boolean };

/** True for an outbox item that changes an earlier message rather than sending a new one. */
export function isChangeItem(item: OutboxItem): item is OutboxItem & { change: OutboxChange } {
  return item.change !== undefined;
}

/** A file a queued message still has to upload. `file` is a Blob: IndexedDB and memory storages keep it as is. */
export interface PendingAttachmentFile {
  file: Blob;
  name: string;
  contentType?: string;
  width?: number;
  height?: number;
  preview?: string;
  /** Set while a multipart upload of it is open in this client (resumed instead of started again). */
  attachmentId?: string;
}

export type OutboxAttachment = { id: string } | PendingAttachmentFile;

export function isPendingFile(a: OutboxAttachment): a is PendingAttachmentFile {
  return "file" in a;
}

/** True while some file of the item is not uploaded yet. */
export function hasPendingFiles(item: OutboxItem): boolean {
  return item.attachments?.some(isPendingFile) ?? false;
}

/** The attachment ids of an item whose files are all uploaded (undefined: none). */
export function attachmentIds(item: OutboxItem): string[] | undefined {
  if (!item.attachments?.length) return undefined;
  return item.attachments.map((a) => ("id" in a && !isPendingFile(a) ? a.id : ""));
}

/** Where the outbox lives. Memory by default; IndexedDBOutboxStorage in browsers; AsyncStorage etc. in apps. */
export interface OutboxStorage {
  getAll(): Promise<OutboxItem[]>;
  put(item: OutboxItem): Promise<void>;
  delete(clientMsgId: string): Promise<void>;
}

export class MemoryOutboxStorage implements OutboxStorage {
  private readonly items = new Map<string, OutboxItem>();
  async getAll(): Promise<OutboxItem[]> {
    return [...this.items.values()];
  }
  async put(item: OutboxItem): Promise<void> {
    this.items.set(item.clientMsgId, { ...item });
  }
  async delete(clientMsgId: string): Promise<void> {
    this.items.delete(clientMsgId);
  }
}

/** Browser storage that survives a reload or a closed tab. */
export class IndexedDBOutboxStorage implements OutboxStorage {
  private db: Promise<IDBDatabase> | null = null;

  constructor(private readonly dbName = "edgechat-outbox") {}

  static isAvailable(): boolean {
    return typeof indexedDB !== "undefined";
  }

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise((resolve, reject) => {
      const req = indexedDB.open(this.dbName, 1);
      req.onupgradeneeded = () => req.result.createObjectStore("outbox", { keyPath: "clientMsgId" });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return this.db;
  }

  private async tx<T>(mode: IDBTransactionMode, run: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.open();
    return new Promise((resolve, reject) => {
      const t = db.transaction("outbox", mode);
      const req = run(t.objectStore("outbox"));
      // Resolve on commit, not on the request: a put is durable only once its transaction completes.
      t.oncomplete = () => resolve(req.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  }

  async getAll(): Promise<OutboxItem[]> {
    return (await this.tx("readonly", (s) => s.getAll())) as OutboxItem[];
  }
  async put(item: OutboxItem): Promise<void> {
    await this.tx("readwrite", (s) => s.put(item));
  }
  async delete(clientMsgId: string): Promise<void> {
    await this.tx("readwrite", (s) => s.delete(clientMsgId));
  }
}

/** A fresh idempotency key: time-ordered, random, valid for ClientMsgIdSchema. */
export function newClientMsgId(): string {
  const bytes = new Uint8Array(10);
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  const id = `c_${Date.now().toString(36)}_${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  return v.parse(ClientMsgIdSchema, id);
}

/** In-memory view of the storage, ordered by creation, shared by all conversations of one client. */
export class Outbox {
  private readonly items = new Map<string, OutboxItem>();
  private loaded: Promise<void> | null = null;
  private lastStamp = 0;

  constructor(readonly storage: OutboxStorage) {}

  load(): Promise<void> {
    this.loaded ??= this.storage.getAll().then((all) => {
      for (const item of all) {
        this.items.set(item.clientMsgId, item);
        this.lastStamp = Math.max(this.lastStamp, item.createdAt);
      }
    });
    return this.loaded;
  }

  /**
   * A createdAt for a new item: the time, but always above the previous one, so that items written in
   * the same millisecond keep their order after a reload (storages return them in any order).
   */
  stamp(): number {
    this.lastStamp = Math.max(Date.now(), this.lastStamp + 1);
    return this.lastStamp;
  }

  async add(item: OutboxItem): Promise<void> {
    await this.load();
    await this.storage.put(item);
    this.items.set(item.clientMsgId, item);
  }

  async remove(clientMsgId: string): Promise<boolean> {
    const had = this.items.delete(clientMsgId);
    if (had) await this.storage.delete(clientMsgId);
    return had;
  }

  has(clientMsgId: string): boolean {
    return this.items.has(clientMsgId);
  }

  get(clientMsgId: string): OutboxItem | undefined {
    return this.items.get(clientMsgId);
  }

  /** Pending items of one user, optionally one conversation, oldest first (the order they were written). */
  pending(userId: string, conversationId?: string): OutboxItem[] {
    return [...this.items.values()]
      .filter((i) => i.userId === userId && (conversationId === undefined || i.conversationId === conversationId))
      .sort((a, b) => a.createdAt - b.createdAt);
  }
}
