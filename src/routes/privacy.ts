// Consent and blocking, per user: who may add me to groups (GET/PATCH /v1/me/settings) and whom I blocked
// (GET /v1/me/blocks, PUT/DELETE /v1/me/blocks/:userId). Stored in D1 (db/privacy.ts), where the routes that
// create groups and add members read them. A block also reaches the objects it concerns at once: the direct
// conversation between the two (no new messages) and both user objects (no presence either way).
import { Hono } from "hono";
import * as v from "valibot";
import { USER_ID_RE } from "../protocol/api";
import { GROUP_ADDS } from "../lib/config";
import { findUserById, requireAccount } from "../db/users";
import { addBlock, blockedEitherWay, countBlocks, getGroupAdds, listBlocks, MAX_BLOCKS, removeBlock, setGroupAdds } from "../db/privacy";
import { AppError, unwrap } from "../lib/errors";
import { readJson, requireUser, type AppContext, type AppEnv } from "../lib/http";
import { directConversationId } from "../lib/ids";
import { conversationStub, userStub } from "../objects/shared/stubs";

export { MAX_BLOCKS };

const SettingsBodySchema = v.object({
  groupAdds: v.picklist(GROUP_ADDS, 'groupAdds must be "anyone", "contacts" or "nobody"'),
});

function targetId(c: AppContext): string {
  const id = c.req.param("userId") ?? "";
  if (!USER_ID_RE.test(id)) throw new AppError("validation_failed", "invalid user id");
  if (id === c.var.user.userId) throw new AppError("bad_request", "you cannot block yourself");
  return id;
}

/** Bring the direct conversation between `a` and `b` (if there is one) in line with D1: blocked either way or not. */
async function syncDirect(c: AppContext, a: string, b: string): Promise<void> {
  const blocked = await blockedEitherWay(c.env.DB, a, b);
  await conversationStub(c.env, await directConversationId(a, b)).setBlocked(blocked);
}

export const privacyRoutes = new Hono<AppEnv>()
  .use(requireUser)
  .get("/settings", async (c) => {
    const groupAdds = await getGroupAdds(c.env.DB, c.var.user.userId, c.var.config.groupAddsDefault);
    return c.json({ settings: { groupAdds } });
  })
  .patch("/settings", async (c) => {
    const { groupAdds } = await readJson(c, SettingsBodySchema);
    await requireAccount(c.env.DB, c.var.user.userId);
    await setGroupAdds(c.env.DB, c.var.user.userId, groupAdds);
    return c.json({ settings: { groupAdds } });
  })
  .get("/blocks", async (c) => {
    return c.json({ blocks: await listBlocks(c.env.DB, c.var.user.userId, MAX_BLOCKS) });
  })
  .put("/blocks/:userId", async (c) => {
    const me = c.var.user.userId;
    const other = targetId(c);
    await unwrap(userStub(c.env, me).takeQuota("members"));
    await requireAccount(c.env.DB, me);
    if (!(await findUserById(c.env.DB, other))) throw new AppError("user_not_found", "no user with that id");
    if ((await countBlocks(c.env.DB, me)) >= MAX_BLOCKS) {
      throw new AppError("too_many_blocks", `you can block at most ${MAX_BLOCKS} users`);
    }
    await addBlock(c.env.DB, me, other);
    await syncDirect(c, me, other);
    // No presence either way, from now: each side drops the other and its sockets are told once.
    await Promise.all([userStub(c.env, me).presenceRevoked([other]), userStub(c.env, other).presenceRevoked([me])]);
    return c.body(null, 204);
  })
  .delete("/blocks/:userId", async (c) => {
    const me = c.var.user.userId;
    const other = targetId(c);
    await unwrap(userStub(c.env, me).takeQuota("members"));
    await removeBlock(c.env.DB, me, other);
    await syncDirect(c, me, other);
    return c.body(null, 204);
  });
