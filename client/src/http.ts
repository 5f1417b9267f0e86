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
  /**
   * Bytes of `rawBody` sent so far, as they go out. Only where the platform reports it (XMLHttpRequest in
   * browsers, used when the client was given no `fetch` of its own); elsewhere never called.
   */
  onUploadProgress?: (sentBytes: number) => void;
}

export class Http {
  constructor(
    readonly baseUrl: string,
    private readonly fetchImpl: FetchLike,
    private readonly getToken: TokenProvider | null,
    /** Upload bodies with XMLHttpRequest when a caller wants progress (browsers; see RawRequestOptions). */
    private readonly xhrUploads = false,
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
    if (options.onUploadProgress && options.rawBody && this.xhrUploads && typeof XMLHttpRequest !== "undefined") {
      return xhrSend(method, this.url(path, options.query), headers, options.rawBody, options.onUploadProgress, options.signal);
    }
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

/** fetch() cannot report upload progress; XMLHttpRequest can. The answer is made a Response like fetch's. */
function xhrSend(method: string, url: string, headers: Record<string, string>, body: Blob, onProgress: (sent: number) => void, signal?: AbortSignal): Promise<Response> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ApiError("aborted", "the request was aborted", 0));
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.responseType = "blob";
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      const responseHeaders = new Headers();
      for (const line of xhr.getAllResponseHeaders().trim().split(/[\r\n]+/)) {
        const at = line.indexOf(":");
        if (at > 0) responseHeaders.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
      }
      const empty = xhr.status === 204 || xhr.status === 304;
      resolve(new Response(empty ? null : (xhr.response as Blob), { status: xhr.status, headers: responseHeaders }));
    };
    xhr.onerror = () => reject(new ApiError("network_error", "network error", 0));
    const onAbort = () => {
      xhr.abort();
      reject(new ApiError("aborted", "the request was aborted", 0));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    xhr.onloadend = () => signal?.removeEventListener("abort", onAbort);
    xhr.send(body);
  });
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
