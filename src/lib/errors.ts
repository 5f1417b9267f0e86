import { ERROR_STATUS, type ErrorBody, type ErrorCode } from "../protocol/errors";

/** The one error type of the service. HTTP renders it as `{ error: { code, message } }`, WebSockets as an `error` frame. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfterMs?: number;
  /** The users an error is about (`consent_required`). */
  readonly userIds?: string[];

  constructor(code: ErrorCode, message: string, options?: { retryAfterMs?: number; userIds?: string[] }) {
    super(message);
    this.name = "AppError";
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.retryAfterMs = options?.retryAfterMs;
    this.userIds = options?.userIds;
  }

  toBody(): ErrorBody {
    const error: ErrorBody["error"] = { code: this.code, message: this.message };
    if (this.retryAfterMs !== undefined) error.retryAfterMs = this.retryAfterMs;
    if (this.userIds !== undefined) error.userIds = this.userIds;
    return { error };
  }
}

/**
 * What a Durable Object RPC method returns. Expected failures travel as values, not exceptions:
 * a thrown error crosses RPC as a bare Error (losing its code) and is logged as uncaught.
 */
export type RpcResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { code: ErrorCode; message: string; retryAfterMs?: number } };

/** Run an RPC body; an AppError becomes `{ ok: false }`, anything else propagates as a real failure. */
export async function rpcResult<T>(body: () => T | Promise<T>): Promise<RpcResult<T>> {
  try {
    return { ok: true, value: await body() };
  } catch (err) {
    if (err instanceof AppError) {
      const error: { code: ErrorCode; message: string; retryAfterMs?: number } = { code: err.code, message: err.message };
      if (err.retryAfterMs !== undefined) error.retryAfterMs = err.retryAfterMs;
      return { ok: false, error };
    }
    throw err;
  }
}

/** Worker side: unwrap an RpcResult, turning a failure back into an AppError with its status. */
export async function unwrap<T>(call: Promise<RpcResult<T>>): Promise<T> {
  const result = await call;
  if (result.ok) return result.value;
  throw new AppError(result.error.code, result.error.message, { retryAfterMs: result.error.retryAfterMs });
}
