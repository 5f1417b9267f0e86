// Auth helpers: sign up, log in, and an access-token provider that refreshes before expiry.
// Refresh tokens rotate and reusing one revokes the family, so refreshes are single-flight.
import type { AuthResponse, PublicUser } from "../../src/protocol/api";
import { Emitter } from "./emitter";
import { ApiError, type FetchLike, Http } from "./http";
import type { TokenReason } from "./transport";

/** What to persist to stay signed in (e.g. localStorage, Keychain). */
export interface Session {
  user: PublicUser;
  accessToken: string;
  refreshToken: string;
  /** Access token expiry, ms since the epoch. */
  expiresAt: number;
}

/** Refresh this long before the access token expires. */
const REFRESH_MARGIN_MS = 30_000;

/**
 * For apps where several instances share one session (browser tabs): a refresh token may be used once,
 * so refreshes must be serialised across instances, and an instance must adopt a session another one
 * already refreshed instead of spending the stale token (which would revoke the whole family).
 */
export interface SharedSessionOptions {
  /** Run `fn` under a cross-instance lock, e.g. `(fn) => navigator.locks.request("edgechat-refresh", fn)`. */
  lock?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** The session as currently saved by any instance (e.g. read back from localStorage). */
  reload?: () => Session | null;
}

export class Auth extends Emitter<{ change: Session | null }> {
  private current: Session | null;
  private refreshing: Promise<Session> | null = null;
  private readonly http: Http;

  constructor(
    baseUrl: string,
    fetchImpl: FetchLike,
    session: Session | null = null,
    private readonly shared: SharedSessionOptions = {},
  ) {
    super();
    this.http = new Http(baseUrl, fetchImpl, null);
    this.current = session;
  }

  /** Take a session saved elsewhere (another tab logged in, out, or refreshed). */
  adopt(session: Session | null): void {
    if (session?.refreshToken === this.current?.refreshToken) return;
    this.set(session);
  }

  get session(): Session | null {
    return this.current;
  }

  get user(): PublicUser | null {
    return this.current?.user ?? null;
  }

  signup(username: string, password: string): Promise<Session> {
    return this.authenticate("/v1/auth/signup", { username, password });
  }

  login(username: string, password: string): Promise<Session> {
    return this.authenticate("/v1/auth/login", { username, password });
  }

  /** Forget the session locally. */
  logout(): void {
    this.set(null);
  }

  /** The token provider the SDK uses for REST and sockets: refreshes when expiring, or when told it expired. */
  readonly getAccessToken = async (reason: TokenReason = "connect"): Promise<string> => {
    const session = this.current;
    if (!session) throw new ApiError("unauthorized", "not signed in", 401);
    if (reason === "expired" || session.expiresAt - Date.now() < REFRESH_MARGIN_MS) return (await this.refresh()).accessToken;
    return session.accessToken;
  };

  /** Exchange the refresh token for a new pair. Concurrent callers share one request. */
  refresh(): Promise<Session> {
    const run = this.shared.lock ?? (<T>(fn: () => Promise<T>) => fn());
    this.refreshing ??= run(async () => {
      const saved = this.shared.reload?.();
      if (saved && saved.refreshToken !== this.current?.refreshToken && saved.expiresAt - Date.now() > REFRESH_MARGIN_MS) {
        return this.set(saved); // another instance refreshed while we waited for the lock
      }
      const session = this.current;
      if (!session) throw new ApiError("unauthorized", "not signed in", 401);
      try {
        const res = await this.http.request<AuthResponse>("POST", "/v1/auth/refresh", { body: { refreshToken: session.refreshToken }, auth: false });
        return this.set(toSession(res));
      } catch (err) {
        // A refused refresh token will never work again: sign out so the app shows the login screen.
        if (err instanceof ApiError && err.status === 401) this.set(null);
        throw err;
      }
    }).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async authenticate(path: string, body: { username: string; password: string }): Promise<Session> {
    const res = await this.http.request<AuthResponse>("POST", path, { body, auth: false });
    return this.set(toSession(res));
  }

  private set(session: Session | null): Session {
    this.current = session;
    this.emit("change", session);
    return session as Session;
  }
}

function toSession(res: AuthResponse): Session {
  return { user: res.user, accessToken: res.accessToken, refreshToken: res.refreshToken, expiresAt: Date.now() + res.expiresIn * 1000 };
}
