// The socket of one open conversation, over ReconnectingSocket (./transport): the URL each connect uses
// (the protocol version asked for, and where to resume: `since` and `epoch`), the fall back to a lower
// version when a server refuses the one asked for (close 4426, ./version), and the frames received,
// handed on one at a time on a promise chain, so an async step (a gap fill) cannot reorder them. Owns the
// version the next socket asks for. What the frames mean is the Conversation's.
import { PROTOCOL_VERSION } from "../../src/protocol/frames";
import { ApiError } from "./http";
import { ReconnectingSocket, type SocketOptions } from "./transport";
import { fallbackVersion } from "./version";

interface LinkOptions {
  conversationId: string;
  wsBaseUrl: string;
  socket: Omit<SocketOptions, "url">;
  /** Where the stream stands (the Conversation's fields), read at connect time. */
  position: { readonly lastSeq: number; readonly epoch: string | null };
  /** Read at connect time: true when this device's user socket carries its presence (`presence=0`, protocol 5.1). */
  presenceElsewhere: () => boolean;
  /** A server refused the version asked for: the next socket, at once, asks for (and speaks) `version`. */
  downgraded: (version: number) => void;
  /** Handle one frame; the next one waits until it settles. */
  handle: (raw: string) => Promise<void>;
  /** Handling a frame threw (the frames after it are still handled). */
  failed: (err: ApiError) => void;
}

export class ConversationLink {
  readonly socket: ReconnectingSocket;
  readonly #options: LinkOptions;
  #chain: Promise<void> = Promise.resolve();
  /** The version the next socket asks for (`v=`). */
  #asked: number = PROTOCOL_VERSION;

  constructor(options: LinkOptions) {
    this.#options = options;
    this.socket = new ReconnectingSocket({
      ...options.socket,
      url: (token) => this.#url(token),
      recoverTerminal: (code) => this.#downgrade(code),
    });
    this.socket.on("frame", (raw) => {
      this.#chain = this.#chain
        .then(() => options.handle(raw))
        .catch((err: unknown) => options.failed(err instanceof ApiError ? err : new ApiError("internal_error", String(err), 0)));
    });
  }

  /** The version the socket asked for: what a `welcome` is negotiated against. */
  get asked(): number {
    return this.#asked;
  }

  /** Ask for the newest version again (on every open: the older server may have been replaced since). */
  askNewest(): void {
    this.#asked = PROTOCOL_VERSION;
  }

  #url(token: string): string {
    const { conversationId, wsBaseUrl, position } = this.#options;
    const url = new URL(`/v1/conversations/${encodeURIComponent(conversationId)}/ws`, wsBaseUrl);
    url.searchParams.set("v", String(this.#asked));
    // Read at connect time: frames still queued on the chain may raise lastSeq further; their
    // duplicates in the backlog are dropped by the seq check, and nothing after lastSeq is missed.
    url.searchParams.set("since", String(position.lastSeq));
    if (position.epoch) url.searchParams.set("epoch", position.epoch);
    if (this.#options.presenceElsewhere()) url.searchParams.set("presence", "0");
    return url.toString();
  }

  /** The server closed with `code`: true when a lower protocol version is worth trying (4426), at once. */
  #downgrade(code: number): boolean {
    const lower = fallbackVersion(this.#asked, code);
    if (lower === null) return false;
    this.#asked = lower;
    this.#options.downgraded(lower);
    return true;
  }
}
