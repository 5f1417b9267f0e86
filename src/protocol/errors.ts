// Error codes and WebSocket close codes shared by the server and every client.
// The strings are a public contract: clients switch on them, so never rename one.

/** Every error the API can return, with the HTTP status used when it travels over REST. */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_json: 400,
  upload_incomplete: 400,
  validation_failed: 400,
  /** A message mentions someone who is not a member. */
  invalid_mention: 400,
  unknown_frame_type: 400,
  unauthorized: 401,
  token_expired: 401,
  invalid_credentials: 401,
  invalid_refresh_token: 401,
  forbidden: 403,
  /** An edit after EDIT_WINDOW_SECONDS. */
  edit_window_closed: 403,
  invalid_signature: 403,
  not_a_member: 403,
  /** A group add refused by the added users' setting or a block (the body's `userIds` names them). */
  consent_required: 403,
  /** A direct conversation between users one of whom blocked the other: no new DM, no new messages. */
  blocked: 403,
  not_found: 404,
  /** Edit, delete, react or reply naming a seq that is not a message (docs/protocol.md 15). */
  message_not_found: 404,
  user_not_found: 404,
  conversation_not_found: 404,
  username_taken: 409,
  conflict: 409,
  /** An admin export or erasure asked for a user who has a job of the other kind running (docs/protocol.md 17). */
  job_running: 409,
  /** Edit, react or reply to a deleted message. */
  message_deleted: 409,
  /** One more distinct emoji on a message that has MAX_REACTIONS_PER_MESSAGE. */
  too_many_reactions: 409,
  attachment_unavailable: 409,
  length_required: 411,
  payload_too_large: 413,
  attachment_too_large: 413,
  attachment_quota_exceeded: 413,
  unsupported_media_type: 415,
  frame_too_large: 413,
  body_too_large: 413,
  group_too_large: 413,
  /** A presence_subscribe would make one user watch more than MAX_WATCHED_USERS users. */
  too_many_watched: 413,
  /** Blocking one more user than MAX_BLOCKS (1,000). */
  too_many_blocks: 413,
  upgrade_required: 426,
  rate_limited: 429,
  too_many_uploads: 429,
  internal_error: 500,
  unavailable: 503,
  conversation_storage_full: 507,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * Codes after which a refused message is kept and sent again, with the same clientMsgId, after a wait
 * (`retryAfterMs` when given, else backoff): nothing was stored, and a later attempt can succeed. Every
 * other code that names a clientMsgId is final for that message. docs/protocol.md 3.2 and 10.
 */
export const RETRYABLE_ERROR_CODES: readonly ErrorCode[] = ["rate_limited", "internal_error", "unavailable", "upload_incomplete"];

/** The protocol's retry rule: a retryable code, or any error that says when to retry (`retryAfterMs`). */
export function isRetryableError(error: { code: string; retryAfterMs?: number }): boolean {
  return error.retryAfterMs !== undefined || (RETRYABLE_ERROR_CODES as readonly string[]).includes(error.code);
}

/** The JSON body of every HTTP error: `{ error: { code, message } }`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; retryAfterMs?: number; userIds?: string[] };
}

/**
 * WebSocket close codes. 4000 + the closest HTTP status, so they read naturally.
 * "terminal" codes mean: do not reconnect with the same credentials/parameters.
 */
export const CloseCode = {
  /** Normal closure, e.g. the client asked for it. */
  Normal: 1000,
  /** The server is restarting or being redeployed: reconnect with `since`. */
  GoingAway: 1001,
  /** Unexpected server failure: reconnect with backoff. */
  InternalError: 1011,
  /** Connect parameters are malformed (e.g. `since` is not an integer). Terminal. */
  BadRequest: 4400,
  /** Token missing, malformed or with a bad signature. Terminal until new credentials. */
  Unauthorized: 4401,
  /** Not a member of the conversation (or removed from it while connected). Terminal. */
  NotAMember: 4403,
  /** Protocol version not supported by this server (a missing ?v= is BadRequest). Terminal: upgrade the client. */
  VersionUnsupported: 4426,
  /** No heartbeat for the presence TTL (30 s): the server assumes the link is dead. Reconnect. */
  HeartbeatTimeout: 4408,
  /** Too many open sockets for this user. Retry later with backoff. */
  TooManyConnections: 4429,
  /** The access token expired: refresh it and reconnect immediately with `since`. */
  TokenExpired: 4440,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** Close codes after which a client must not reconnect without changing something first. */
export const TERMINAL_CLOSE_CODES: readonly number[] = [
  CloseCode.BadRequest,
  CloseCode.Unauthorized,
  CloseCode.NotAMember,
  CloseCode.VersionUnsupported,
];
