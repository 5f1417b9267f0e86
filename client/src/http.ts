// REST: one `request` that adds the bearer token, retries once with a refreshed token on
// `token_expired`, and turns `{ error: { code, message } }` bodies into ApiError.
import type { ErrorBody } from "../../src/protocol/errors";
import type { TokenProvider } from "./transport";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Every failed REST call: `code` is the server's stable error code (or `network_error`). */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly retryAfterMs?: number,
    /** `consent_required`: the users who do not accept being added by you. */
    readonly userIds?: string[],
  ) {
    super(message);
    this.name = "ApiError";
  }
}

interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined | null>;
  /** Default true: send the access token. */
  auth?: boolean;
}

export interface RawRequestOptions extends RequestOptions {
  /** Sent as the body instead of JSON `body`. */
  rawBody?: Blob;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export class Http {
  constructor(
    readonly baseUrl: string,
    private readonly fetchImpl: FetchLike,
    private readonly getToken: TokenProvider | null,
  ) {}

  url(path: string, query?: RequestOptions["query"]): string {
    const url = new URL(path, this.baseUrl.endsWith("/") ? this.baseUrl : `${this.baseUrl}/`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    return url.toString();
  }

  async request<T>(method: string, path: string, options: RawRequestOptions = {}): Promise<T> {
    const res = await this.raw(method, path, options);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  /**
   * The response of a call that went well (2xx, or 304), else an ApiError. `rawBody` (a Blob or bytes, e.g.
   * a file) is sent as is with `headers`; a Blob can be sent twice, so the `token_expired` retry resends it.
   */
  async raw(method: string, path: string, options: RawRequestOptions = {}): Promise<Response> {
    const auth = options.auth ?? true;
    let res = await this.send(method, path, options, auth ? await this.token("connect") : null);
    if (auth && res.status === 401) {
      const body = await readError(res);
      if (body.code !== "token_expired") throw body;
      res = await this.send(method, path, options, await this.token("expired"));
    }
    if (!res.ok && res.status !== 304) throw await readError(res);
    return res;
  }

  private async token(reason: "connect" | "expired"): Promise<string> {
    if (!this.getToken) throw new ApiError("unauthorized", "not signed in", 401);
    return this.getToken(reason);
  }

  private async send(method: string, path: string, options: RawRequestOptions, token: string | null): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    try {
      return await this.fetchImpl(this.url(path, options.query), {
        method,
        headers,
        body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      if (options.signal?.aborted) throw new ApiError("aborted", "the request was aborted", 0);
      throw new ApiError("network_error", `network error: ${String(err)}`, 0);
    }
  }
}

async function readError(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as Partial<ErrorBody>;
    if (body.error && typeof body.error.code === "string") {
      return new ApiError(body.error.code, body.error.message ?? body.error.code, res.status, body.error.retryAfterMs, body.error.userIds);
    }
  } catch {
    // Not JSON: fall through.
  }
  return new ApiError(res.status === 404 ? "not_found" : "http_error", `HTTP ${res.status}`, res.status);
}
