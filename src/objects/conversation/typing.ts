// Typing indicators: ephemeral, never persisted, never timed on the server (receivers hide them at
// expiresAt). Owns the per-member throttle (in memory: losing it on hibernation allows one extra frame).
//
// The throttle counts every frame of a member whatever its `active` state, so alternating true/false cannot
// flood the others (in a large group each frame is one send per socket): at most one `active` per
// TYPING_THROTTLE_MS, and a stop only when that member's indicator is showing. A sent message ends typing
// (receivers hide the indicator when the message arrives) and lets the next `active` out at once; sends are
// rate-limited, so that stays bounded. Nothing goes out in a direct conversation under a block.
//
// Large conversations (fan-out on read): the throttle bounds each member, but not the sum, and every frame is
// one send per live socket, so N members typing would cost N x sockets every 3 s. There at most
// TYPING_SHOWN_MAX_LARGE members' indicators show at once: another member's `active` is dropped until one of
// them stops, sends a message or lets its indicator expire, which bounds the object's typing work to a few
// broadcasts every 3 s however many type (a UI names two or three typers and says "several" beyond).
import { TYPING_SHOWN_MAX_LARGE, TYPING_THROTTLE_MS, TYPING_TTL_MS } from "../../protocol/user";
import type { ConversationSocket, Sockets } from "./connections";

export class Typing {
  readonly #sockets: Sockets;
  readonly #muted: () => boolean;
  readonly #large: () => boolean;
  /** Per member: when its last `active` went out, and whether its indicator is showing (no stop or message since). */
  readonly #state = new Map<string, { activeAt: number; showing: boolean }>();
  /** Members whose indicator is showing (an `active` went out, no stop or message since): at most a few in large conversations. */
  readonly #shown = new Set<string>();

  constructor(sockets: Sockets, muted: () => boolean, large: () => boolean) {
    this.#sockets = sockets;
    this.#muted = muted;
    this.#large = large;
  }

  /** A typing frame from `from`: broadcast to the others' live sockets if the throttle lets it through. */
  typed(from: ConversationSocket, active: boolean): void {
    if (this.#muted()) return;
    const now = Date.now();
    const state = this.#state.get(from.userId) ?? { activeAt: -Infinity, showing: false };
    if (active) {
      if (now - state.activeAt < TYPING_THROTTLE_MS) return;
      if (!state.showing && this.#large() && this.#showing(now) >= TYPING_SHOWN_MAX_LARGE) return;
      state.activeAt = now;
      state.showing = true;
      this.#shown.add(from.userId);
    } else {
      if (!state.showing) return;
      state.showing = false;
      this.#shown.delete(from.userId);
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
    this.#shown.delete(userId);
  }

  /** How many indicators are showing now; one the receivers have hidden (past its expiry) no longer counts. */
  #showing(now: number): number {
    for (const userId of this.#shown) {
      const state = this.#state.get(userId);
      if (!state || now >= state.activeAt + TYPING_TTL_MS) {
        this.#shown.delete(userId);
        if (state) state.showing = false;
      }
    }
    return this.#shown.size;
  }
}
