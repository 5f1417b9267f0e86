// Typing indicators: ephemeral, never persisted, never timed on the server (receivers hide them at
// expiresAt). Owns the per-member throttle (in memory: losing it on hibernation allows one extra frame).
//
// The throttle counts every frame of a member whatever its `active` state, so alternating true/false cannot
// flood the others (in a large group each frame is one send per socket): at most one `active` per
// TYPING_THROTTLE_MS, and a stop only when that member's indicator is showing. A sent message ends typing
// (receivers hide the indicator when the message arrives) and lets the next `active` out at once; sends are
// rate-limited, so that stays bounded. Nothing goes out in a direct conversation under a block.
import { TYPING_THROTTLE_MS, TYPING_TTL_MS } from "../../protocol/user";
import type { ConversationSocket, Sockets } from "./connections";

export class Typing {
  readonly #sockets: Sockets;
  readonly #muted: () => boolean;
  /** Per member: when its last `active` went out, and whether its indicator is showing (no stop or message since). */
  readonly #state = new Map<string, { activeAt: number; showing: boolean }>();

  constructor(sockets: Sockets, muted: () => boolean) {
    this.#sockets = sockets;
    this.#muted = muted;
  }

  /** A typing frame from `from`: broadcast to the others' live sockets if the throttle lets it through. */
  typed(from: ConversationSocket, active: boolean): void {
    if (this.#muted()) return;
    const now = Date.now();
    const state = this.#state.get(from.userId) ?? { activeAt: -Infinity, showing: false };
    if (active) {
      if (now - state.activeAt < TYPING_THROTTLE_MS) return;
      state.activeAt = now;
      state.showing = true;
    } else {
      if (!state.showing) return;
      state.showing = false;
    }
    this.#state.set(from.userId, state);
    this.#sockets.broadcast(
      { type: "typing", userId: from.userId, username: from.username, active, expiresAt: now + TYPING_TTL_MS },
      (s) => s.userId !== from.userId && s.live,
    );
  }

  /** The user sent a message, which ends "typing": their next typing frame goes out at once. */
  sent(userId: string): void {
    this.#state.delete(userId);
  }
}
