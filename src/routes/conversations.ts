// Conversation lifecycle, membership and history. Every call is answered by the conversation's own
// Durable Object, which is authoritative for membership; the Worker authenticates, routes, and applies the
// rules that span users before any object is touched: the caller's quotas (kept in their user object),
// consent and blocks (D1, db/privacy.ts). Membership is checked before anyone is looked up.
import { Hono } from "hono";
import {
  AddMembersBodySchema,
  ChangeQuerySchema,
  CONVERSATION_ID_RE,
  EditBodySchema,
  ReactionsQuerySchema,
  SeqPathSchema,
  ThreadQuerySchema,
  CreateConversationBodySchema,
  HistoryQuerySchema,
  PostMessageBodySchema,
  RetentionBodySchema,
  SetRoleBodySchema,
  USER_ID_RE,
  type PublicUser,
} from "../protocol/api";
import { findUserById, requireAccount } from "../db/users";
import { blockedEitherWay, checkAdds } from "../db/privacy";
import { AppError, unwrap } from "../lib/errors";
import { parseQuery, readJson, requireUser, type AppContext, type AppEnv } from "../lib/http";
import { directConversationId, newId } from "../lib/ids";
import * as v from "valibot";
import { ReceiptBodySchema } from "../protocol/user";
import { conversationStub, userStub } from "../objects/shared/stubs";
import { BLOCKED_MESSAGE } from "../objects/conversation/members";
import { isReaction } from "../protocol/reactions";
import type { ChangeRequest } from "../protocol/frames";

/** One token from the caller's quota (their user object), before any other work: 429 rate_limited when empty. */
async function takeQuota(c: AppContext, kind: "create" | "members"): Promise<void> {
  await unwrap(userStub(c.env, c.var.user.userId).takeQuota(kind));
}

/** The users among `ids` that exist and let the caller add them to a group; anything else is refused as a whole. */
async function consentingUsers(c: AppContext, ids: string[]): Promise<PublicUser[]> {
  const { found, refused } = await checkAdds(c.env.DB, c.var.user.userId, ids, c.var.config.groupAddsDefault);
  if (found.length !== new Set(ids).size) {
    const known = new Set(found.map((u) => u.id));
    throw new AppError("user_not_found", `unknown user id: ${ids.find((id) => !known.has(id))}`);
  }
  if (refused.length > 0) {
    throw new AppError("consent_required", "some of these users do not accept being added to groups by you", { userIds: refused });
  }
  return found;
}

/** The `:seq` of a message route. */
function seqParam(c: AppContext): number {
  const parsed = v.safeParse(SeqPathSchema, c.req.param("seq") ?? "");
  if (!parsed.success) throw new AppError("validation_failed", "seq must be a positive integer");
  return parsed.output;
}

/** The `:emoji` of a reaction route (percent-decoded by the router). */
function emojiParam(c: AppContext): string {
  const emoji = c.req.param("emoji") ?? "";
  if (!isReaction(emoji)) throw new AppError("validation_failed", "emoji must be one emoji (one grapheme cluster of at most 32 bytes)");
  return emoji;
}

/** Edit, delete or react over REST: 201 with the ack of the entry stored, 200 when nothing new was stored. */
async function change(c: AppContext, request: ChangeRequest): Promise<Response> {
  const ack = await unwrap(conversationStub(c.env, conversationId(c)).change(c.var.user, request));
  return c.json({ ack }, ack.duplicate ? 200 : 201);
}

function conversationId(c: AppContext): string {
  const id = c.req.param("id") ?? "";
  if (!CONVERSATION_ID_RE.test(id)) throw new AppError("not_a_member", "you are not a member of this conversation");
  return id;
}

export const conversationRoutes = new Hono<AppEnv>()
  .use(requireUser)
  .post("/", async (c) => {
    const body = await readJson(c, CreateConversationBodySchema);
    const me = c.var.user;
    await requireAccount(c.env.DB, me.userId);
    if (body.type === "direct") {
      if (body.userId === me.userId) throw new AppError("bad_request", "a direct conversation needs another user");
      await takeQuota(c, "create");
      const other = await findUserById(c.env.DB, body.userId);
      if (!other) throw new AppError("user_not_found", "no user with that id");
      if (await blockedEitherWay(c.env.DB, me.userId, other.id)) throw new AppError("blocked", BLOCKED_MESSAGE);
      const id = await directConversationId(me.userId, other.id);
      const stub = conversationStub(c.env, id);
      const result = await unwrap(
        stub.initialize({
          id,
          type: "direct",
          title: null,
          createdBy: me.userId,
          members: [
            { userId: me.userId, username: me.username, role: "member" },
            { userId: other.id, username: other.username, role: "member" },
          ],
        }),
      );
      // A block made while this request ran found no conversation to mark: look again now that it exists.
      if (result.created && (await blockedEitherWay(c.env.DB, me.userId, other.id))) {
        await stub.setBlocked(true);
        throw new AppError("blocked", BLOCKED_MESSAGE);
      }
      return c.json({ conversation: result.conversation }, result.created ? 201 : 200);
    }
    const wanted = [...new Set(body.memberIds.filter((id) => id !== me.userId))];
    if (wanted.length + 1 > c.var.config.maxGroupMembers) {
      throw new AppError("group_too_large", `a group holds at most ${c.var.config.maxGroupMembers} members`);
    }
    await takeQuota(c, "create");
    const found = await consentingUsers(c, wanted);
    const id = newId("g");
    const result = await unwrap(
      conversationStub(c.env, id).initialize({
        id,
        type: "group",
        title: body.title,
        createdBy: me.userId,
        members: [
          { userId: me.userId, username: me.username, role: "owner" },
          ...found.map((u) => ({ userId: u.id, username: u.username, role: "member" as const })),
        ],
      }),
    );
    return c.json({ conversation: result.conversation }, 201);
  })
  .get("/:id", async (c) => {
    const conversation = await unwrap(conversationStub(c.env, conversationId(c)).describe(c.var.user));
    return c.json({ conversation });
  })
  .post("/:id/members", async (c) => {
    const id = conversationId(c);
    const { userIds } = await readJson(c, AddMembersBodySchema);
    await takeQuota(c, "members");
    const stub = conversationStub(c.env, id);
    // Membership and role first: a caller who may not add anyone costs no lookup.
    const { fresh } = await unwrap(stub.memberAccess(c.var.user, userIds));
    const found = await consentingUsers(c, fresh);
    const conversation = await unwrap(stub.addMembers(c.var.user, found.map((u) => ({ userId: u.id, username: u.username }))));
    return c.json({ conversation });
  })
  .delete("/:id/members/:userId", async (c) => {
    const userId = c.req.param("userId");
    if (!USER_ID_RE.test(userId)) throw new AppError("validation_failed", "invalid user id");
    const id = conversationId(c);
    // Leaving is never limited.
    if (userId !== c.var.user.userId) await takeQuota(c, "members");
    await unwrap(conversationStub(c.env, id).removeMember(c.var.user, userId));
    return c.body(null, 204);
  })
  .patch("/:id/members/:userId", async (c) => {
    const userId = c.req.param("userId");
    if (!USER_ID_RE.test(userId)) throw new AppError("validation_failed", "invalid user id");
    const { role } = await readJson(c, SetRoleBodySchema);
    const id = conversationId(c);
    await takeQuota(c, "members");
    const conversation = await unwrap(conversationStub(c.env, id).setRole(c.var.user, userId, role));
    return c.json({ conversation });
  })
  .put("/:id/retention", async (c) => {
    const { days } = await readJson(c, RetentionBodySchema);
    const conversation = await unwrap(conversationStub(c.env, conversationId(c)).setRetention(c.var.user, days));
    return c.json({ conversation });
  })
  .get("/:id/messages", async (c) => {
    const query = parseQuery(c, HistoryQuerySchema);
    const page = await unwrap(conversationStub(c.env, conversationId(c)).history(c.var.user, query));
    return c.json(page);
  })
  .post("/:id/messages", async (c) => {
    const message = await readJson(c, PostMessageBodySchema);
    const ack = await unwrap(conversationStub(c.env, conversationId(c)).send(c.var.user, message));
    return c.json({ ack }, ack.duplicate ? 200 : 201);
  })
  .patch("/:id/messages/:seq", async (c) => {
    const seq = seqParam(c);
    const { clientMsgId, body } = await readJson(c, EditBodySchema);
    return change(c, { type: "edit", clientMsgId, seq, body });
  })
  .delete("/:id/messages/:seq", async (c) => {
    const seq = seqParam(c);
    const { clientMsgId } = parseQuery(c, ChangeQuerySchema);
    return change(c, { type: "delete", clientMsgId: clientMsgId ?? newId("rest"), seq });
  })
  .put("/:id/messages/:seq/reactions/:emoji", async (c) => {
    const seq = seqParam(c);
    const emoji = emojiParam(c);
    const { clientMsgId } = parseQuery(c, ChangeQuerySchema);
    return change(c, { type: "react", clientMsgId: clientMsgId ?? newId("rest"), seq, emoji, on: true });
  })
  .delete("/:id/messages/:seq/reactions/:emoji", async (c) => {
    const seq = seqParam(c);
    const emoji = emojiParam(c);
    const { clientMsgId } = parseQuery(c, ChangeQuerySchema);
    return change(c, { type: "react", clientMsgId: clientMsgId ?? newId("rest"), seq, emoji, on: false });
  })
  .get("/:id/messages/:seq/replies", async (c) => {
    const seq = seqParam(c);
    const query = parseQuery(c, ThreadQuerySchema);
    return c.json(await unwrap(conversationStub(c.env, conversationId(c)).thread(c.var.user, seq, query)));
  })
  .get("/:id/messages/:seq/reactions", async (c) => {
    const seq = seqParam(c);
    const query = parseQuery(c, ReactionsQuerySchema);
    const lists = await unwrap(conversationStub(c.env, conversationId(c)).reactions(c.var.user, seq, query));
    if (query.emoji !== undefined) return c.json(lists[0]!);
    return c.json({ reactions: lists.map(({ nextAfter: _, ...r }) => r) });
  })
  .get("/:id/receipts", async (c) => {
    const { seq } = parseQuery(c, v.object({ seq: v.pipe(v.string(), v.regex(/^\d{1,15}$/, "seq must be a non-negative integer"), v.transform(Number)) }));
    return c.json({ receipts: await unwrap(conversationStub(c.env, conversationId(c)).receipts(c.var.user, seq)) });
  })
  .post("/:id/receipts", async (c) => {
    const body = await readJson(c, ReceiptBodySchema);
    const me = c.var.user.userId;
    await unwrap(userStub(c.env, me).reportReceipt(me, conversationId(c), body.delivered, body.read));
    return c.body(null, 204);
  });
