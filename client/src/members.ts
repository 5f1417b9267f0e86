// How a `members_changed` frame changes a conversation's member list: joins, removals and role changes.
import type { Member } from "../../src/protocol/api";
import type { ServerFrame } from "../../src/protocol/frames";

type MembersChanged = Extract<ServerFrame, { type: "members_changed" }>;

/**
 * The list after `change`, in the same order: removed members dropped, `updated` roles applied (a
 * promotion, a demotion, an inherited ownership; absent from older servers), new members appended.
 */
export function applyMembersChanged(members: readonly Member[], change: MembersChanged): Member[] {
  const gone = new Set(change.removed);
  const roles = new Map((change.updated ?? []).map((u) => [u.userId, u.role as Member["role"]]));
  const next = members
    .filter((m) => !gone.has(m.userId))
    .map((m) => {
      const role = roles.get(m.userId);
      return role === undefined || role === m.role ? m : { ...m, role };
    });
  for (const a of change.added) {
    if (!next.some((m) => m.userId === a.userId)) {
      next.push({ userId: a.userId, username: a.username, role: a.role as Member["role"], joinedAt: Date.now() });
    }
  }
  return next;
}
