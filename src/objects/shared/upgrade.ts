// The Worker -> object half of a WebSocket upgrade. The Worker verifies the token and the protocol
// version, then forwards a fresh request whose only identity is IDENTITY_HEADER (the object is not
// reachable from the internet, and client headers are never forwarded). Both objects start here.
import type { Identity } from "../../lib/tokens";
import { refusedUpgrade } from "../../lib/sockets";
import { PROTOCOL_VERSION } from "../../protocol/frames";

/** What the Worker tells an object about a socket's user. Set by the Worker only, after verifying the token. */
export const IDENTITY_HEADER = "X-Edgechat-Identity";

export interface Upgrade {
  identity: Identity;
  url: URL;
  /**
   * The protocol version of this socket: the `v` the client asked for (the Worker checked it is supported);
   * 1 from an older Worker that did not pass it on. Said in `welcome`/`hello`.
   */
  protocol: number;
  /** The subprotocol to echo, if the client offered ours. */
  headers: HeadersInit | undefined;
}

/** Read a forwarded upgrade; anything else gets a 400 (only the Worker talks to objects). */
export function readUpgrade(request: Request): Upgrade | Response {
  const identity = JSON.parse(request.headers.get(IDENTITY_HEADER) ?? "null") as Identity | null;
  if (!identity || request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return new Response("expected a WebSocket upgrade from the Worker", { status: 400 });
  }
  const subprotocol = request.headers.get("Sec-WebSocket-Protocol");
  const url = new URL(request.url);
  return {
    identity,
    url,
    protocol: Math.min(Number(url.searchParams.get("v")) || 1, PROTOCOL_VERSION),
    headers: subprotocol ? { "Sec-WebSocket-Protocol": subprotocol } : undefined,
  };
}

/** Refuse with a close code the client can read (a browser cannot read the status of a failed upgrade). */
export function refuse(upgrade: Upgrade, code: number, reason: string): Response {
  return refusedUpgrade(code, reason, upgrade.headers);
}

/** Complete the upgrade with the client end of an accepted pair. */
export function upgraded(upgrade: Upgrade, client: WebSocket): Response {
  return new Response(null, { status: 101, webSocket: client, headers: upgrade.headers });
}
