// The conversation socket's frames: each client frame is checked (identity, token expiry, membership, shape) and
// handed to the module that owns it. Also the one gate for naming an archived message (a reply's parent or a
// change's target older than the hot tail): it is read from the archive first, at the price of a send token, for
// the socket and for REST alike.
import { CloseCode } from "../../protocol/errors";
import { parseClientFrame, type ClientFrame, type OutgoingMessage } from "../../protocol/frames";
import { AppError } from "../../lib/errors";
import type { TokenBuckets } from "../../lib/rate-limit";
import type { Changes } from "./changes";
import type { CommitPath } from "./commit";
import type { Sockets } from "./connections";
import type { Cursors } from "./cursors";
import { BLOCKED_MESSAGE, type Members } from "./members";
import type { Meta } from "./meta";
import type { Typing } from "./typing";

/** What the dispatcher hands frames to. */
export interface FrameParts {
  meta: Meta;
  members: Members;
  sockets: Sockets;
  changes: Changes;
  commit: CommitPath;
  typing: Typing;
  cursors: Cursors;
  /** The send limiter (an accessor: tests replace the object's limiter). */
  limiter: () => TokenBuckets;
  limits: { sendRatePerSecond: number; sendBurst: number };
}

export class FrameDispatcher {
  readonly #parts: FrameParts;

  constructor(parts: FrameParts) {
    this.#parts = parts;
  }

  /** One frame from a socket. A bad frame gets an error and the socket stays open: it may be one bug in an otherwise healthy client. */
  async handle(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const { sockets, members, changes, commit, typing, cursors } = this.#parts;
    const state = sockets.get(ws);
    if (!state) return sockets.close(ws, CloseCode.InternalError, "socket has no identity");
    if (state.exp * 1000 <= Date.now()) return sockets.close(ws, CloseCode.TokenExpired, "access token expired");
    if (!members.has(state.userId)) return sockets.close(ws, CloseCode.NotAMember, "not a member of this conversation");

    const parsed = parseClientFrame(raw);
    if (!parsed.ok) return sockets.send(ws, { type: "error", code: parsed.code, message: parsed.message, clientMsgId: parsed.clientMsgId });
    const frame = parsed.frame;
    switch (frame.type) {
      case "ping":
        return sockets.send(ws, { type: "pong" });
      case "send":
      case "send_batch": {
        const messages: OutgoingMessage[] = frame.type === "send" ? [sendFields(frame)] : frame.messages;
        if (members.blocked) {
          for (const m of messages) sockets.send(ws, { type: "error", code: "blocked", message: BLOCKED_MESSAGE, clientMsgId: m.clientMsgId });
          return;
        }
        typing.sent(state.userId);
        const parents = messages.flatMap((m) => (m.replyTo !== undefined ? [m.replyTo] : []));
        // A reply to a message older than the hot tail: its quote is read from the archive first (rare; never for plain sends).
        if (parents.length > 0 && changes.needs(parents).length > 0 && !(await this.#loaded(ws, state.userId, parents, messages))) return;
        return commit.enqueue(ws, state.userId, messages);
      }
      case "edit":
      case "delete":
      case "react": {
        if (members.blocked) return sockets.send(ws, { type: "error", code: "blocked", message: BLOCKED_MESSAGE, clientMsgId: frame.clientMsgId });
        if (changes.needs([frame.seq]).length > 0 && !(await this.#loaded(ws, state.userId, [frame.seq], [frame]))) return;
        return commit.enqueueChange(ws, state.userId, frame);
      }
      case "typing":
        return typing.typed(state, frame.active);
      case "receipt":
        return cursors.report(state.userId, frame.delivered ?? 0, frame.read ?? 0);
    }
  }

  /**
   * Read from the archive the messages older than the hot tail that a change or reply names. Each read costs the
   * user one send token (on top of the change's own), so naming old messages cannot make this object read D1 or
   * R2 faster than the user may send; throws rate_limited, or unavailable when the archive cannot be read.
   */
  async readArchived(userId: string, seqs: number[]): Promise<void> {
    const { changes, limiter, limits } = this.#parts;
    const missing = changes.needs(seqs);
    if (missing.length === 0) return;
    const { granted, retryAfterMs } = limiter().take(userId, missing.length);
    if (granted < missing.length) {
      throw new AppError("rate_limited", `sending too fast: at most ${limits.sendRatePerSecond} messages per second (burst ${limits.sendBurst})`, { retryAfterMs });
    }
    await changes.load(missing);
  }

  /** readArchived for socket frames: on failure each frame's entry gets the (retryable) error. */
  async #loaded(ws: WebSocket, userId: string, seqs: number[], named: { clientMsgId: string }[]): Promise<boolean> {
    try {
      await this.readArchived(userId, seqs);
      return true;
    } catch (err) {
      const limited = err instanceof AppError && err.code === "rate_limited";
      if (!limited) console.warn(JSON.stringify({ at: "load_target", conversation: this.#parts.meta.id, error: String(err) }));
      for (const n of named) {
        this.#parts.sockets.send(
          ws,
          limited
            ? { type: "error", code: "rate_limited", message: err.message, clientMsgId: n.clientMsgId, retryAfterMs: err.retryAfterMs }
            : { type: "error", code: "unavailable", message: "could not read that message from the archive; retry", clientMsgId: n.clientMsgId, retryAfterMs: 1_000 },
        );
      }
      return false;
    }
  }
}

/** The message of a `send` frame (everything but its type). */
function sendFields({ type: _, ...message }: Extract<ClientFrame, { type: "send" }>): OutgoingMessage {
  return message;
}
