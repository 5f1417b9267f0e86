// The user socket (GET /v1/me/ws), one per device: accepting it, the hello, and the frames a device sends
// (presence_subscribe, receipt, ping). Owns what a user socket's attachment holds (SocketState).
//
// The socket bookkeeping itself (attachments, hibernation, expiry, closing) is shared/sockets.ts; what the
// frames ask for is done by the inbox and presence modules.
import { CloseCode } from "../../protocol/errors";
import { parseFrame } from "../../protocol/frames";
import { UserClientFrameSchema, type UserClientFrame, type UserServerFrame } from "../../protocol/user";
import { randomToken } from "../../lib/ids";
import type { SocketIdentity, SocketRegistry } from "../shared/sockets";
import { readUpgrade, refuse, upgraded } from "../shared/upgrade";
import type { Inbox } from "./inbox";
import type { Meta } from "./meta";
import type { UserPresence } from "./presence";

export interface SocketState extends SocketIdentity {
  /** Names this socket in the `watching` table (presence.ts). */
  key: string;
}

export type UserSockets = SocketRegistry<SocketState, UserServerFrame>;

const USER_FRAME_TYPES: ReadonlySet<string> = new Set<UserClientFrame["type"]>(["presence_subscribe", "receipt", "ping"]);

export interface ConnectionDeps {
  ctx: DurableObjectState;
  meta: Meta;
  sockets: UserSockets;
  maxSocketsPerUser: number;
  inbox: Inbox;
  presence: UserPresence;
}

export class Connections {
  readonly #deps: ConnectionDeps;

  constructor(deps: ConnectionDeps) {
    this.#deps = deps;
  }

  /** The upgrade forwarded by the Worker (which checked the token): accept, say hello, count the device. */
  async open(request: Request): Promise<Response> {
    const { ctx, meta, sockets, inbox, presence } = this.#deps;
    const upgrade = readUpgrade(request);
    if (upgrade instanceof Response) return upgrade;
    const { identity } = upgrade;
    meta.set("user_id", identity.userId);
    if (sockets.size >= this.#deps.maxSocketsPerUser) {
      return refuse(upgrade, CloseCode.TooManyConnections, "too many open sockets for this user");
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    sockets.accept(server, { userId: identity.userId, exp: identity.exp, key: randomToken(9), connectedAt: Date.now() });
    sockets.send(server, { type: "hello", protocol: upgrade.protocol, userId: identity.userId, totalUnread: inbox.totalUnread() });
    ctx.waitUntil(presence.socketOpened());
    inbox.socketOpened();
    return upgraded(upgrade, client);
  }

  /** One frame from a device. */
  async message(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const { sockets, inbox, presence } = this.#deps;
    const state = sockets.get(ws);
    if (!state) return sockets.close(ws, CloseCode.InternalError, "socket has no identity");
    if (state.exp * 1000 <= Date.now()) return sockets.close(ws, CloseCode.TokenExpired, "access token expired");
    const parsed = parseFrame(raw, UserClientFrameSchema, USER_FRAME_TYPES);
    if (!parsed.ok) return sockets.send(ws, { type: "error", code: parsed.code, message: parsed.message });
    const frame = parsed.frame;
    switch (frame.type) {
      case "ping":
        return sockets.send(ws, { type: "pong" });
      case "presence_subscribe": {
        let result;
        try {
          result = await presence.subscribe(state, frame.userIds);
        } catch (err) {
          // D1 or a user object failed: say so (the socket stays open) rather than leave the client waiting.
          console.warn(JSON.stringify({ at: "presence_subscribe", error: String(err) }));
          return sockets.send(ws, { type: "error", code: "unavailable", message: "presence is unavailable right now; subscribe again later" });
        }
        if (!result.ok) return sockets.send(ws, { type: "error", ...result.error });
        return sockets.send(ws, { type: "presence", presence: result.value });
      }
      case "receipt": {
        const result = await inbox.reportReceipt(state.userId, frame.conversationId, frame.delivered, frame.read);
        if (!result.ok) sockets.send(ws, { type: "error", ...result.error });
        return;
      }
      default:
        frame satisfies never;
    }
  }
}
