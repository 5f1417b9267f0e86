// The one ChatClient of this tab and the app-wide state the views read, as signals fed by SDK and
// browser events: the signed-in user, the hash route, presence and page visibility.
import { signal } from "@preact/signals";
import { ApiError, ChatClient, type Presence, type PublicUser } from "../../client/src/index";
import { loadSession, saveSession } from "./store";

export const client = new ChatClient({
  baseUrl: location.origin,
  session: loadSession(),
  // Tabs share one session and a refresh token works once: refresh under a lock, adopt each other's.
  sharedSession: {
    lock: "locks" in navigator ? <T>(fn: () => Promise<T>) => navigator.locks.request("edgechat-refresh", () => fn()) : undefined,
    reload: loadSession,
  },
});

/** The signed-in user; changes only when the account does (not on every token refresh). */
export const user = signal<PublicUser | null>(client.auth.user);
/** `#/login`, `#/` or `#/c/<conversation id>`. */
export const route = signal(location.hash || "#/");
/** Everyone whose presence this tab follows, as last reported. */
export const presence = signal<ReadonlyMap<string, Presence>>(new Map());
export const visible = signal(document.visibilityState === "visible");

client.auth.on("change", (s) => {
  saveSession(s);
  if (s?.user.id !== user.peek()?.id) user.value = s?.user ?? null;
  if (!s) location.hash = "#/login";
});
client.on("presence", (list) => {
  const next = new Map(presence.peek());
  for (const p of list) next.set(p.userId, p);
  presence.value = next;
});
window.addEventListener("storage", (e) => {
  if (e.key === "edgechat.session") client.auth.adopt(loadSession());
});
window.addEventListener("hashchange", () => (route.value = location.hash || "#/"));
window.addEventListener("online", () => void client.flushOutbox().catch(() => {}));
document.addEventListener("visibilitychange", () => (visible.value = document.visibilityState === "visible"));

export function isOnline(userId: string): boolean {
  return presence.value.get(userId)?.online === true;
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.code === "network_error" ? "You are offline." : err.message;
  return String(err);
}
