// Typing indicators of one conversation, both directions: TypingSender owns this user's outgoing
// `typing` frames (throttled the way the server throttles them); TypingIndicators owns who else is typing
// now, each entry expiring on our own clock.
import type { ClientFrame } from "../../src/protocol/frames";
import { TYPING_THROTTLE_MS, TYPING_TTL_MS } from "../../src/protocol/user";

export interface TypingUser {
  userId: string;
  username: string;
}

/**
 * The server forwards one `active` frame per TYPING_THROTTLE_MS per user (`active: false` resets the
 * window) and drops the rest. A frame it would drop is deferred to the end of the window instead, so the
 * indicator still shows on the other side.
 */
export class TypingSender {
  readonly #send: (frame: string) => boolean;
  #sentAt = 0;
  /** The server has forwarded our `active: true` and not yet an `active: false`. */
  #active = false;
  #wanted = false;
  #deferred: ReturnType<typeof setTimeout> | null = null;

  /** `send` returns false when the socket could not take the frame. */
  constructor(send: (frame: string) => boolean) {
    this.#send = send;
  }

  /** Call on every keystroke, and with false when the input is cleared. */
  set(active: boolean): void {
    this.#wanted = active;
    if (!active) {
      this.#clearDeferred();
      if (this.#active && this.#send(JSON.stringify({ type: "typing", active: false } satisfies ClientFrame))) this.#sentAt = 0;
      this.#active = false;
      return;
    }
    const wait = this.#sentAt + TYPING_THROTTLE_MS - Date.now();
    if (wait > 0) {
      // Either a renewal that is not due yet, or a new burst inside the server's window: send at its end.
      if (!this.#active && this.#deferred === null) {
        this.#deferred = setTimeout(() => {
          this.#deferred = null;
          if (this.#wanted) this.set(true);
        }, wait + 20);
      }
      return;
    }
    if (this.#send(JSON.stringify({ type: "typing", active: true } satisfies ClientFrame))) {
      this.#active = true;
      this.#sentAt = Date.now();
    }
  }

  /**
   * A message was sent: receivers hide our indicator when it arrives, but the server's throttle window
   * keeps running, so typing again inside it is deferred rather than sent and dropped.
   */
  messageSent(): void {
    this.#active = false;
    this.#wanted = false;
  }

  stop(): void {
    this.#clearDeferred();
  }

  #clearDeferred(): void {
    if (this.#deferred !== null) clearTimeout(this.#deferred);
    this.#deferred = null;
  }
}

/** Other members typing now. Entries expire TYPING_TTL_MS after their last renewal, on our clock (immune to skew). */
export class TypingIndicators {
  readonly #users = new Map<string, { username: string; expiresAt: number }>();
  readonly #onExpiry: () => void;
  #timer: ReturnType<typeof setTimeout> | null = null;

  /** `onExpiry` runs when the expiry timer has dropped the entries that ran out. */
  constructor(onExpiry: () => void) {
    this.#onExpiry = onExpiry;
  }

  get users(): TypingUser[] {
    return [...this.#users].map(([userId, t]) => ({ userId, username: t.username }));
  }

  /** A `typing` frame from another member. */
  apply(userId: string, username: string, active: boolean): void {
    if (active) this.#users.set(userId, { username, expiresAt: Date.now() + TYPING_TTL_MS });
    else this.#users.delete(userId);
    this.#scheduleExpiry();
  }

  /** Their message arrived, so they stopped typing. True when they were shown. */
  remove(userId: string): boolean {
    return this.#users.delete(userId);
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #scheduleExpiry(): void {
    this.stop();
    if (this.#users.size === 0) return;
    const next = Math.min(...[...this.#users.values()].map((t) => t.expiresAt));
    this.#timer = setTimeout(() => {
      const now = Date.now();
      for (const [id, t] of this.#users) if (t.expiresAt <= now) this.#users.delete(id);
      this.#scheduleExpiry();
      this.#onExpiry();
    }, Math.max(0, next - Date.now()) + 10);
  }
}
