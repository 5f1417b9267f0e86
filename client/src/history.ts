// The REST reads of one conversation: its metadata, pages of its stream (history), a thread's replies
// (docs/protocol.md 15.4) and who reacted (15.3), with the shapes of their answers. Reads only: what a page
// does to the messages held is the stream's (./stream).
import type { Conversation as ConversationInfo, HistoryPage } from "../../src/protocol/api";
import type { ChatMessage } from "../../src/protocol/frames";
import type { Http } from "./http";

/** A page of a thread (GET …/messages/:seq/replies). */
export interface ThreadPage {
  parent: ChatMessage;
  /** Replies, oldest first. */
  messages: ChatMessage[];
  /** Pass as `after` for the next page; null at the end. */
  nextAfter: number | null;
}

/** Every emoji on a message with up to 100 user ids each, first reacted first (GET …/reactions). */
export interface ReactionsSummary {
  reactions: Array<{ emoji: string; count: number; userIds: string[] }>;
}

/** One page of one emoji's users (GET …/reactions?emoji=). */
export interface ReactionUsersPage {
  emoji: string;
  count: number;
  userIds: string[];
  nextAfter: string | null;
}

export class HistoryReads {
  readonly #http: Http;
  readonly #id: string;

  constructor(http: Http, conversationId: string) {
    this.#http = http;
    this.#id = conversationId;
  }

  /** The conversation's metadata and members (GET /v1/conversations/:id). */
  info(): Promise<{ conversation: ConversationInfo }> {
    return this.#http.request<{ conversation: ConversationInfo }>("GET", `/v1/conversations/${encodeURIComponent(this.#id)}`);
  }

  /** One page of the stream, messages and change entries alike. */
  page(query: { before?: number; after?: number; limit: number }): Promise<HistoryPage> {
    return this.#http.request<HistoryPage>("GET", this.#messagesPath(), { query });
  }

  thread(seq: number, options: { after?: number; limit?: number }): Promise<ThreadPage> {
    return this.#http.request<ThreadPage>("GET", `${this.#messagesPath()}/${seq}/replies`, { query: options });
  }

  reactions(seq: number, options: { emoji?: string; after?: string; limit?: number }): Promise<ReactionsSummary | ReactionUsersPage> {
    return this.#http.request("GET", `${this.#messagesPath()}/${seq}/reactions`, { query: options });
  }

  #messagesPath(): string {
    return `/v1/conversations/${encodeURIComponent(this.#id)}/messages`;
  }
}
