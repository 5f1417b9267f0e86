// WebSocket upgrades. The Worker verifies the token and the protocol version, then hands the request
// to the conversation object with the identity in a header that only the Worker can set (the object
// is not reachable from the internet, and the client's own headers are not forwarded).
import { Hono } from "hono";
import { CloseCode } from "../protocol/errors";
import { SUBPROTOCOL, SUPPORTED_PROTOCOL_VERSIONS } from "../protocol/frames";
import { CONVERSATION_ID_RE } from "../protocol/api";
import { AppError } from "../lib/errors";
import { refusedUpgrade } from "../lib/sockets";
import type { AppEnv } from "../lib/http";
import { extractToken, verifyAccessToken, type Identity } from "../lib/tokens";
import { IDENTITY_HEADER } from "../objects/shared/upgrade";
import { conversationStub } from "../objects/shared/stubs";

export { SUBPROTOCOL };

export function selectedProtocol(req: Request): Record<string, string> {
  const offered = req.headers.get("Sec-WebSocket-Protocol")?.split(",").map((p) => p.trim()) ?? [];
  // Echo only our protocol name, never the bearer entry.
  return offered.includes(SUBPROTOCOL) ? { "Sec-WebSocket-Protocol": SUBPROTOCOL } : {};
}

/** Refuse an upgrade with a close code the client can read (see lib/sockets.ts). */
export function refuseSocket(req: Request, code: number, reason: string): Response {
  return refusedUpgrade(code, reason, selectedProtocol(req));
}

/** `version`: the protocol version the client asked for (supported); the Worker passes it on to the object as `?v=`. */
type Verdict = { ok: true; identity: Identity; version: number } | { ok: false; code: number; reason: string };

/** Everything a socket must pass before it reaches an object: version, parameters, token. */
export async function checkUpgrade(req: Request, secret: string, extraParams: string[] = []): Promise<Verdict> {
  const url = new URL(req.url);
  const v = url.searchParams.get("v");
  if (v === null || !/^\d{1,4}$/.test(v)) return { ok: false, code: CloseCode.BadRequest, reason: "protocol version ?v= is required" };
  if (!SUPPORTED_PROTOCOL_VERSIONS.includes(Number(v))) {
    return { ok: false, code: CloseCode.VersionUnsupported, reason: `protocol version ${v} is not supported` };
  }
  for (const p of extraParams) {
    const value = url.searchParams.get(p);
    if (value !== null && !/^\d{1,15}$/.test(value)) return { ok: false, code: CloseCode.BadRequest, reason: `${p} must be a non-negative integer` };
  }
  const token = extractToken(req, true);
  if (!token) return { ok: false, code: CloseCode.Unauthorized, reason: "missing access token" };
  try {
    return { ok: true, identity: await verifyAccessToken(secret, token), version: Number(v) };
  } catch (err) {
    const code = err instanceof AppError && err.code === "token_expired" ? CloseCode.TokenExpired : CloseCode.Unauthorized;
    return { ok: false, code, reason: code === CloseCode.TokenExpired ? "access token expired" : "invalid access token" };
  }
}

export const websocketRoutes = new Hono<AppEnv>().get("/conversations/:id/ws", async (c) => {
  const req = c.req.raw;
  if (req.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return c.json({ error: { code: "upgrade_required", message: "this endpoint only accepts WebSocket upgrades" } }, 426);
  }
  const id = c.req.param("id");
  if (!CONVERSATION_ID_RE.test(id)) return refuseSocket(req, CloseCode.NotAMember, "not a member of this conversation");
  const params = new URL(req.url).searchParams;
  const epoch = params.get("epoch");
  if (epoch !== null && !/^[A-Za-z0-9_-]{1,64}$/.test(epoch)) return refuseSocket(req, CloseCode.BadRequest, "invalid epoch");
  // presence=0: this device's user socket carries its presence, so this socket holds no lease (12.4).
  const presence = params.get("presence");
  if (presence !== null && presence !== "0" && presence !== "1") return refuseSocket(req, CloseCode.BadRequest, "presence must be 0 or 1");
  const verdict = await checkUpgrade(req, c.env.AUTH_SECRET, ["since"]);
  if (!verdict.ok) return refuseSocket(req, verdict.code, verdict.reason);

  // A fresh request: only the parameters the object needs; never the token, never client headers.
  const inner = new URL(`https://conversation/ws`);
  const since = params.get("since");
  if (since !== null) inner.searchParams.set("since", since);
  inner.searchParams.set("v", String(verdict.version));
  if (epoch !== null) inner.searchParams.set("epoch", epoch);
  if (presence === "0") inner.searchParams.set("presence", "0");
  const headers = new Headers({ Upgrade: "websocket", [IDENTITY_HEADER]: JSON.stringify(verdict.identity) });
  const proto = selectedProtocol(req)["Sec-WebSocket-Protocol"];
  if (proto) headers.set("Sec-WebSocket-Protocol", proto);
  return conversationStub(c.env, id).fetch(new Request(inner, { headers }));
});
