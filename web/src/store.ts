// What the browser remembers between visits: the session, and (until the server's inbox is
// available) the conversations this browser has opened.
import type { Session } from "../../client/src/index";

const SESSION_KEY = "edgechat.session";

export function loadSession(): Session | null {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) ?? "null") as Session | null;
    return s && typeof s.refreshToken === "string" && s.user ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session | null): void {
  if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else localStorage.removeItem(SESSION_KEY);
}

const knownKey = (userId: string) => `edgechat.known.${userId}`;

export function knownConversations(userId: string): string[] {
  try {
    const ids = JSON.parse(localStorage.getItem(knownKey(userId)) ?? "[]") as unknown;
    return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

export function rememberConversation(userId: string, id: string): void {
  const ids = knownConversations(userId).filter((x) => x !== id);
  localStorage.setItem(knownKey(userId), JSON.stringify([id, ...ids].slice(0, 200)));
}
