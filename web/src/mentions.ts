// @-mentions in the browser: what the composer is completing, which members match, the ids a body
// mentions when it is sent, and the body cut into text and @names for display (docs/protocol.md 15.5).
// The server only counts ids; `@name` in the text is for people.

export interface Member {
  userId: string;
  username: string;
  role: "owner" | "admin" | "member";
}

/** What the picker offers: a member, or everyone (`@all`, group owners and admins only). */
export type MentionOption = { kind: "user"; userId: string; username: string } | { kind: "all"; username: "all" };

/** The `@query` right before the caret, if the caret is at the end of one (at the start or after a space). */
export function mentionQuery(text: string, caret: number): { start: number; query: string } | null {
  const m = /(^|\s)@([a-z0-9_.-]{0,32})$/i.exec(text.slice(0, caret));
  if (!m) return null;
  return { start: caret - m[2]!.length - 1, query: m[2]!.toLowerCase() };
}

/** Members whose username starts with the query (then contains it), without me; `@all` first when allowed. */
export function mentionOptions(members: readonly Member[], me: string, query: string, canMentionAll: boolean, max = 6): MentionOption[] {
  const others = members.filter((m) => m.userId !== me);
  const starts = others.filter((m) => m.username.startsWith(query));
  const contains = query ? others.filter((m) => !m.username.startsWith(query) && m.username.includes(query)) : [];
  const users: MentionOption[] = [...starts, ...contains].map((m) => ({ kind: "user", userId: m.userId, username: m.username }));
  const all: MentionOption[] = canMentionAll && "all".startsWith(query) ? [{ kind: "all", username: "all" }] : [];
  return [...all, ...users].slice(0, max);
}

const AT_NAME = /(^|[^a-z0-9_.-])@([a-z0-9_.-]{1,32})/gi;

/** The `@names` written in a body, lower case, without a trailing dot (the end of a sentence). */
function namesIn(body: string): Set<string> {
  const out = new Set<string>();
  for (const m of body.matchAll(AT_NAME)) out.add(m[2]!.toLowerCase().replace(/\.+$/, ""));
  return out;
}

/**
 * The mentions a body carries when sent: every member named `@username` in it (picked from the list or
 * typed), and `@all` when the sender may mention everyone.
 */
export function mentionsOf(body: string, members: readonly Member[], me: string, canMentionAll: boolean): { mentions?: string[]; mentionsAll?: true } {
  const names = namesIn(body);
  const mentions = members.filter((m) => m.userId !== me && names.has(m.username)).map((m) => m.userId);
  return {
    ...(mentions.length ? { mentions } : {}),
    ...(canMentionAll && names.has("all") ? { mentionsAll: true as const } : {}),
  };
}

/** A body cut into plain text and `@name` parts (names of current members, or `all`). */
export type BodyPart = { text: string; mention?: undefined } | { text: string; mention: { userId: string | null } };

export function splitMentions(body: string, idsByName: ReadonlyMap<string, string>): BodyPart[] {
  if (!body.includes("@")) return [{ text: body }];
  const parts: BodyPart[] = [];
  let last = 0;
  for (const m of body.matchAll(AT_NAME)) {
    const name = m[2]!.toLowerCase().replace(/\.+$/, "");
    const userId = name === "all" ? null : idsByName.get(name);
    if (userId === undefined) continue;
    const at = m.index + m[1]!.length;
    const end = at + 1 + name.length;
    if (at > last) parts.push({ text: body.slice(last, at) });
    parts.push({ text: body.slice(at, end), mention: { userId } });
    last = end;
  }
  if (last < body.length) parts.push({ text: body.slice(last) });
  return parts;
}
