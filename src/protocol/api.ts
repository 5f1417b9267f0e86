// REST request schemas and response shapes, shared by the Worker's routes and the client SDK.
import * as v from "valibot";
import { ClientMsgIdSchema, LONE_SURROGATE, OutgoingMessageSchema, type ChatMessage } from "./frames";
import { ReactionSchema } from "./reactions";

export const USERNAME_RE = /^[a-z0-9_.-]{3,32}$/;
/** Ids minted by this server are `u_...`; ids passed by an app's backend via /v1/admin/tokens must match this. */
export const USER_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const CONVERSATION_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

export const UsernameSchema = v.pipe(
  v.string("username must be a string"),
  v.trim(),
  v.toLowerCase(),
  v.regex(USERNAME_RE, "username must be 3-32 characters of a-z 0-9 _ . -"),
);
export const PasswordSchema = v.pipe(
  v.string("password must be a string"),
  v.minLength(8, "password must be at least 8 characters"),
  v.maxLength(256, "password must be at most 256 characters"),
);
export const UserIdSchema = v.pipe(v.string("user id must be a string"), v.regex(USER_ID_RE, "invalid user id"));

export const SignupBodySchema = v.object({ username: UsernameSchema, password: PasswordSchema });
export const LoginBodySchema = v.object({
  username: UsernameSchema,
  password: v.pipe(v.string("password must be a string"), v.maxLength(256, "password is too long")),
});
export const RefreshBodySchema = v.object({
  refreshToken: v.pipe(v.string("refreshToken must be a string"), v.minLength(1), v.maxLength(512)),
});
export const AdminTokenBodySchema = v.object({ userId: UserIdSchema, username: UsernameSchema });

export const CreateConversationBodySchema = v.variant("type", [
  v.object({ type: v.literal("direct"), userId: UserIdSchema }),
  v.object({
    type: v.literal("group"),
    title: v.pipe(
      v.string("title must be a string"),
      v.trim(),
      v.minLength(1, "title must not be empty"),
      v.maxLength(200),
      v.check((s) => !LONE_SURROGATE.test(s), "title must be well-formed Unicode (no lone surrogates)"),
    ),
    memberIds: v.optional(v.pipe(v.array(UserIdSchema), v.maxLength(10_000)), []),
  }),
]);
export const AddMembersBodySchema = v.object({
  userIds: v.pipe(v.array(UserIdSchema), v.minLength(1, "userIds must not be empty"), v.maxLength(1000, "at most 1000 userIds per call")),
});
/** `PUT …/retention` (protocol 16): delete messages older than `days` (0: keep forever), or null to follow the deployment. */
export const RetentionBodySchema = v.object({
  days: v.nullable(v.pipe(v.number("days must be a number or null"), v.integer("days must be a whole number"), v.minValue(0, "days must be 0 or more"), v.maxValue(36_500, "days must be at most 36500"))),
});
export const SetRoleBodySchema = v.object({ role: v.picklist(["admin", "member"], 'role must be "admin" or "member"') });
/** Same fields and rules as the `send` frame (body, attachments or both). */
export const PostMessageBodySchema = OutgoingMessageSchema;

/** `PATCH …/messages/:seq` (protocol 15.1): same fields as the `edit` frame, without type and seq. */
export const EditBodySchema = v.object({ clientMsgId: ClientMsgIdSchema, body: v.pipe(v.string("body must be a string"), v.maxLength(256 * 1024, "body is too large"), v.check((s) => !LONE_SURROGATE.test(s), "body must be well-formed Unicode (no lone surrogates)")) });
/** `DELETE …/messages/:seq` and the reaction routes: idempotent by what they do; a clientMsgId is optional. */
export const ChangeQuerySchema = v.object({ clientMsgId: v.optional(ClientMsgIdSchema) });
/** A message's seq in a URL path. */
export const SeqPathSchema = v.pipe(v.string(), v.regex(/^\d{1,15}$/, "seq must be a positive integer"), v.transform(Number), v.minValue(1, "seq must be a positive integer"));
/** `GET …/messages/:seq/replies` (protocol 15.4). */
export const ThreadQuerySchema = v.object({
  after: v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/, "after must be a non-negative integer"), v.transform(Number)), "0"),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,4}$/, "limit must be an integer"), v.transform(Number), v.minValue(1), v.maxValue(200, "limit must be at most 200")), "50"),
});
/** `GET …/messages/:seq/reactions` (protocol 15.3). */
export const ReactionsQuerySchema = v.object({
  emoji: v.optional(ReactionSchema),
  after: v.optional(UserIdSchema),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,4}$/, "limit must be an integer"), v.transform(Number), v.minValue(1), v.maxValue(1000, "limit must be at most 1000")), "100"),
});

const SeqParam = v.pipe(v.string(), v.regex(/^\d{1,15}$/, "must be a non-negative integer"), v.transform(Number));
export const HistoryQuerySchema = v.pipe(
  v.object({
    before: v.optional(SeqParam),
    after: v.optional(SeqParam),
    limit: v.optional(
      v.pipe(v.string(), v.regex(/^\d{1,4}$/, "limit must be an integer"), v.transform(Number), v.minValue(1), v.maxValue(200, "limit must be at most 200")),
      "50",
    ),
  }),
  v.check((q) => q.before === undefined || q.after === undefined, "use either before or after, not both"),
);
export type HistoryQuery = v.InferOutput<typeof HistoryQuerySchema>;

// ---------------------------------------------------------------- responses

export interface PublicUser {
  id: string;
  username: string;
}

export interface AuthResponse {
  user: PublicUser;
  accessToken: string;
  refreshToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
}

export type Role = "owner" | "admin" | "member";
export type ConversationType = "direct" | "group";

export interface Member {
  userId: string;
  username: string;
  role: Role;
  joinedAt: number;
}

export interface Conversation {
  id: string;
  type: ConversationType;
  title: string | null;
  createdBy: string;
  createdAt: number;
  epoch: string;
  lastSeq: number;
  members: Member[];
  /** Messages older than this many days are deleted from every tier; 0 keeps them forever (protocol 16). */
  retentionDays: number;
  /** True when the conversation set its own period; false when it follows the deployment's RETENTION_DAYS. */
  retentionOwn: boolean;
}

export interface HistoryPage {
  /** Always in ascending seq order, whichever direction was asked for. */
  messages: ChatMessage[];
  /** Pass as `before` to get the next older page; null when the first message is in this page. */
  nextBefore: number | null;
  /** Pass as `after` to get the next newer page; null when no message lies above this page (docs/protocol.md 4.6). */
  nextAfter: number | null;
  lastSeq: number;
  epoch: string;
  /** The lowest seq history still holds: older messages were deleted by retention (docs/protocol.md 16). 1 when none were. */
  firstSeq: number;
}

export interface SendResult {
  clientMsgId: string;
  seq: number;
  id: string;
  createdAt: number;
  duplicate: boolean;
}
