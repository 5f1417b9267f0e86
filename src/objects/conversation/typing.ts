// Typing indicators: ephemeral, never persisted, never timed on the server (receivers hide them at
// expiresAt). Owns the per-user throttle (in memory: losing it on hibernation allows one extra frame).
import { TYPING_THROTTLE_MS, TYPING_TTL_MS } from "../../protocol/user";
import type { ConversationSocket, Sockets } from "./connections";

export class Typing {
  readonly #sockets: Sockets;
  /** Last `active` broadcast per user. */
  readonly #at = new Map<string, number>();

  constructor(sockets: Sockets) {
    this.#sockets = sockets;
  }

  /** A typing frame from `from`: at most one `active` per TYPING_THROTTLE_MS reaches the others' live sockets. */
  typed(from: ConversationSocket, active: boolean): void {
    const now = Date.now();
    const last = this.#at.get(from.userId) ?? 0;
    if (active && now - last < TYPING_THROTTLE_MS) return;
    this.#at.set(from.userId, active ? now : 0);
    this.#sockets.broadcast(
      { type: "typing", userId: from.userId, username: from.username, active, expiresAt: now + TYPING_TTL_MS },
      (s) => s.userId !== from.userId && s.live,
    );
  }

  /** The user sent a message, which ends "typing": their next typing frame goes out at once. */
  sent(userId: string): void {
    this.#at.delete(userId);
  }
}
