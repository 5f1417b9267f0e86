// `members_changed` frames, paced. A frame lists every member a change added, so adding 1,000 people to a group
// with 4,000 sockets open is ~58 KB to each socket: ~230 MB of sends. Sent in one event, that held the object for
// ~2.5 s (every message sent meanwhile waited behind it) and the runtime's memory rose by as much (measured,
// bench/members-load.ts). So each event sends at most `sliceBytes` of these frames and hands the rest to a
// zero-delay timer: messages and other requests run between slices.
//
// Every socket still gets every frame, and in order: frames wait in one queue, and a frame goes to its next
// socket only once every earlier frame has reached all of its own. A small change (a member added, removed or
// promoted; its frame times the sockets under `sliceBytes`) goes out at once, in the event that made it, as
// before. Each frame goes to the sockets open when it was made: a socket opened later reads the members itself
// (GET /v1/conversations/:id) and is past the change. Kept in memory only: if the object restarts while a large
// change is still going out (seconds, for 1,000 added to 4,000 online), the sockets not reached yet miss it.
import type { ServerFrame } from "../../protocol/frames";
import { trySend } from "../../lib/sockets";
import type { Sockets } from "./connections";

type MembersChanged = Extract<ServerFrame, { type: "members_changed" }>;

export class MemberNews {
  readonly #sockets: Sockets;
  readonly #sliceBytes: number;
  /** Frames not yet sent to every socket, oldest first, each with the sockets it has yet to reach. */
  readonly #queue: { text: string; targets: WebSocket[] }[] = [];
  #scheduled = false;

  constructor(sockets: Sockets, sliceBytes: number) {
    this.#sockets = sockets;
    this.#sliceBytes = sliceBytes;
  }

  /** Tell every open socket of a membership change: the first slice now, the rest in later events. */
  announce(frame: MembersChanged): void {
    this.#queue.push({ text: JSON.stringify(frame), targets: this.#sockets.open() });
    if (!this.#scheduled) this.#pump();
  }

  /** Frames not yet sent to every socket (tests read it). */
  get pending(): number {
    return this.#queue.length;
  }

  #pump(): void {
    this.#scheduled = false;
    let budget = this.#sliceBytes;
    while (this.#queue.length > 0 && budget > 0) {
      const head = this.#queue[0]!;
      while (head.targets.length > 0 && budget > 0) {
        // A socket closed since (its member removed or gone) is skipped by trySend.
        trySend(head.targets.pop()!, head.text);
        budget -= head.text.length;
      }
      if (head.targets.length === 0) this.#queue.shift();
    }
    if (this.#queue.length === 0) return;
    this.#scheduled = true;
    setTimeout(() => this.#pump(), 0);
  }
}
