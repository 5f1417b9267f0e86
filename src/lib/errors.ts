import { ERROR_STATUS, type ErrorBody, type ErrorCode } from "../protocol/errors";

/** The one error type of the service. HTTP renders it as `{ error: { code, message } }`, WebSockets as an `error` frame. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfterMs?: number;

  constructor(code: ErrorCode, message: string, options?: { retryAfterMs?: number }) {
    super(message);
    this.name = "AppError";
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.retryAfterMs = options?.retryAfterMs;
  }

  toBody(): ErrorBody {
    const error: ErrorBody["error"] = { code: this.code, message: this.message };
    if (this.retryAfterMs !== undefined) error.retryAfterMs = this.retryAfterMs;
    return { error };
  }
}

/**
 * Errors thrown inside a Durable Object lose their class when they cross RPC (only message survives),
 * so objects throw `AppError` and the Worker revives it from the message prefix `[code] message`.
 */
export function isAppErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_STATUS, code);
}

export function reviveError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  if (err instanceof Error) {
    const m = /^\[([a-z_]+)\] ([\s\S]*)$/.exec(err.message);
    if (m && isAppErrorCode(m[1]!)) return new AppError(m[1], m[2]!);
  }
  return undefined;
}

/** An error that survives the trip across Durable Object RPC with its code intact. */
export function rpcError(code: ErrorCode, message: string): Error {
  return new Error(`[${code}] ${message}`);
}
