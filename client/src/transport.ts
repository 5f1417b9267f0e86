// One self-healing WebSocket: reconnects with capped, jittered backoff; asks the token provider for a
// token before every attempt; stops on terminal close codes; detects dead links with the runtime's
// auto-answered ping, so a healthy hibernated Durable Object is never woken just to prove it is alive.
import { CloseCode, TERMINAL_CLOSE_CODES } from "../../src/protocol/errors";
import { PING_FRAME, PONG_FRAME, SUBPROTOCOL } from "../../src/protocol/frames";
import { Backoff, type BackoffOptions } from "./backoff";
import { Emitter } from "./emitter";

/** Handler slots are checked bivariantly (as methods are), so the DOM's, React Native's and ws's sockets all fit. */
type Handler<E> = { bivarianceHack(ev: E): void }["bivarianceHack"];

/** What the SDK needs from a WebSocket: the browser's, React Native's, or `ws` in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type ConnectionState = "connecting" | "open" | "reconnecting" | "offline" | "closed";

/** Why a token is requested: every (re)connect asks; `expired` means the server said 4440, so refresh. */
export type TokenReason = "connect" | "expired";
export type TokenProvider = (reason: TokenReason) => string | Promise<string>;

export interface ConnectionError {
  code: number;
  reason: string;
  /** True when the socket will not reconnect by itself (terminal close code). */
  terminal: boolean;
}

export interface HeartbeatOptions {
  /**
   * Ping this often. Default 15 000: the server closes a socket (4408) that has not pinged for the
   * presence TTL (30 s), judged by the runtime's auto-response timestamp, whatever else it sends.
   */
  intervalMs?: number;
  /** Declare the link dead if nothing arrives this long after a ping. Default 10 000. */
  timeoutMs?: number;
}

export interface SocketOptions {
  /** Builds the URL of each attempt (so `since` is always the latest seq). */
  url: (token: string) => string;
  getToken: TokenProvider;
  WebSocket?: WebSocketConstructor;
  backoff?: BackoffOptions;
  heartbeat?: HeartbeatOptions;
  /** Give up on an attempt that has not opened after this long. Default 15 000. */
  connectTimeoutMs?: number;
  /**
   * Called on a terminal close code before giving up: return true when the owner changed what `url` builds
   * (e.g. 4426: ask for a lower protocol version) and the socket should reconnect at once instead.
   */
  recoverTerminal?: (code: number, reason: string) => boolean;
}

interface SocketEvents {
  state: ConnectionState;
  open: undefined;
  frame: string;
  close: { code: number; reason: string };
  error: ConnectionError;
}

const OPEN = 1;

function defaultWebSocket(): WebSocketConstructor {
  const ctor = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!ctor) throw new Error("no global WebSocket: pass one (e.g. `import WebSocket from \"ws\"`) as the WebSocket option");
  return ctor;
}

interface BrowserLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

function isOffline(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: unknown } }).navigator;
  return typeof nav?.onLine === "boolean" && !nav.onLine;
}

export class ReconnectingSocket extends Emitter<SocketEvents> {
  private ws: WebSocketLike | null = null;
  private current: ConnectionState = "closed";
  private readonly backoff: Backoff;
  private readonly WS: WebSocketConstructor;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private lastPingAt = 0;
  private pingSentAt: number | null = null;
  private stopped = true;
  private everOpened = false;
  private expiredInARow = 0;
  private nextTokenReason: TokenReason = "connect";
  /** Bumped per attempt: events from an abandoned socket are ignored. */
  private generation = 0;
  private readonly win: BrowserLike | null;

  constructor(private readonly options: SocketOptions) {
    super();
    this.WS = options.WebSocket ?? defaultWebSocket();
    this.backoff = new Backoff(options.backoff);
    const g = globalThis as { addEventListener?: unknown; document?: unknown };
    this.win = typeof g.addEventListener === "function" && g.document !== undefined ? (globalThis as unknown as BrowserLike) : null;
  }

  get state(): ConnectionState {
    return this.current;
  }

  get isOpen(): boolean {
    return this.current === "open" && this.ws?.readyState === OPEN;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.everOpened = false;
    this.backoff.reset();
    this.win?.addEventListener("online", this.onOnline);
    this.win?.addEventListener("offline", this.onOffline);
    this.win?.addEventListener("visibilitychange", this.onVisible);
    void this.connect();
  }

  /** Close for good (the app is done with this socket). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.win?.removeEventListener("online", this.onOnline);
    this.win?.removeEventListener("offline", this.onOffline);
    this.win?.removeEventListener("visibilitychange", this.onVisible);
    this.abandon(CloseCode.Normal, "client closed");
    this.clearRetry();
    this.setState("closed");
  }

  /** Returns false when the socket is not open (the caller keeps the frame, e.g. in the outbox). */
  send(text: string): boolean {
    if (!this.isOpen || !this.ws) return false;
    try {
      this.ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  /** Drop the link now and reconnect at once (e.g. after detecting a gap, or the network came back). */
  reconnectNow(): void {
    if (this.stopped) return;
    this.abandon(4000, "reconnecting");
    this.clearRetry();
    this.backoff.reset();
    void this.connect();
  }

  /** Test hook and app escape hatch: the link dies as if the network dropped (no close handshake). */
  simulateDrop(): void {
    if (this.stopped || !this.ws) return;
    this.abandon(4000, "simulated drop");
    this.scheduleRetry();
  }

  private setState(state: ConnectionState): void {
    if (this.current === state) return;
    this.current = state;
    this.emit("state", state);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    if (isOffline()) return this.setState("offline");
    const generation = ++this.generation;
    this.setState(this.everOpened ? "reconnecting" : "connecting");
    let token: string;
    try {
      const reason = this.nextTokenReason;
      this.nextTokenReason = "connect";
      token = await this.options.getToken(reason);
    } catch (err) {
      if (generation !== this.generation || this.stopped) return;
      // No token (signed out, refresh revoked): nothing to retry with.
      this.emit("error", { code: CloseCode.Unauthorized, reason: `token provider failed: ${String(err)}`, terminal: true });
      return this.stop();
    }
    if (generation !== this.generation || this.stopped) return;
    let ws: WebSocketLike;
    try {
      // The token travels in the subprotocol list, not the URL: query strings end up in access logs.
      ws = new this.WS(this.options.url(token), [SUBPROTOCOL, `bearer.${token}`]);
    } catch (err) {
      this.emit("error", { code: CloseCode.BadRequest, reason: `cannot open socket: ${String(err)}`, terminal: true });
      return this.stop();
    }
    this.ws = ws;
    this.connectTimer = setTimeout(() => {
      if (generation !== this.generation) return;
      this.abandon(4000, "connect timeout");
      this.scheduleRetry();
    }, this.options.connectTimeoutMs ?? 15_000);

    ws.onopen = () => {
      if (generation !== this.generation) return;
      this.clearConnectTimer();
      this.everOpened = true;
      this.backoff.opened();
      this.lastPingAt = Date.now();
      this.pingSentAt = null;
      this.startHeartbeat();
      this.setState("open");
      this.emit("open", undefined);
    };
    ws.onmessage = (ev) => {
      if (generation !== this.generation) return;
      // Any frame after a ping proves the link works both ways.
      this.pingSentAt = null;
      // Reset only once the server talked: a refused upgrade opens and closes at once (4440 included).
      this.expiredInARow = 0;
      const data = typeof ev.data === "string" ? ev.data : String(ev.data);
      if (data === PONG_FRAME) return;
      this.emit("frame", data);
    };
    ws.onerror = () => {
      // Always followed by close; the close code decides what happens.
    };
    ws.onclose = (ev) => {
      if (generation !== this.generation) return;
      this.ws = null;
      this.clearConnectTimer();
      this.stopHeartbeat();
      this.handleClose(ev.code, ev.reason);
    };
  }

  private handleClose(code: number, reason: string): void {
    this.emit("close", { code, reason });
    if (this.stopped) return;
    if (TERMINAL_CLOSE_CODES.includes(code)) {
      if (this.options.recoverTerminal?.(code, reason)) {
        void this.connect();
        return;
      }
      this.emit("error", { code, reason, terminal: true });
      return this.stop();
    }
    if (code === CloseCode.TokenExpired) {
      // Refresh and come straight back, unless the fresh token is refused too (clock skew, broken provider).
      this.nextTokenReason = "expired";
      if (this.expiredInARow++ === 0) {
        void this.connect();
        return;
      }
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    this.clearRetry();
    if (this.stopped) return;
    if (isOffline()) return this.setState("offline");
    this.setState(this.everOpened ? "reconnecting" : "connecting");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, this.backoff.delay());
  }

  /** Forget the current socket without waiting for a close handshake a dead link would never finish. */
  private abandon(code: number, reason: string): void {
    this.generation++;
    this.clearConnectTimer();
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = () => {};
    try {
      ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const interval = this.options.heartbeat?.intervalMs ?? 15_000;
    const timeout = this.options.heartbeat?.timeoutMs ?? 10_000;
    // The ping is the exact auto-response text, so the runtime answers it without waking a hibernated
    // object: a healthy idle connection costs nothing. No answer within `timeout` = dead link.
    this.heartbeatTimer = setInterval(() => this.checkHeartbeat(interval, timeout), Math.max(100, Math.min(interval, timeout) / 4));
  }

  private checkHeartbeat(interval: number, timeout: number): void {
    const now = Date.now();
    if (this.pingSentAt !== null) {
      if (now - this.pingSentAt >= timeout) {
        this.abandon(4000, "heartbeat timeout");
        this.scheduleRetry();
      }
      return;
    }
    if (now - this.lastPingAt >= interval) this.ping();
  }

  private ping(): void {
    if (!this.isOpen || this.pingSentAt !== null) return;
    this.pingSentAt = this.lastPingAt = Date.now();
    this.send(PING_FRAME);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.pingSentAt = null;
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private clearConnectTimer(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  private readonly onOnline = (): void => {
    if (this.stopped) return;
    if (this.current === "offline" || !this.isOpen) this.reconnectNow();
  };

  private readonly onOffline = (): void => {
    if (this.stopped) return;
    // The browser knows before TCP does: drop now so sends go to the outbox instead of a dead socket.
    this.abandon(4000, "offline");
    this.clearRetry();
    this.setState("offline");
  };

  private readonly onVisible = (): void => {
    // Timers are throttled in background tabs: check the link as soon as the user looks again.
    const doc = (globalThis as { document?: { visibilityState?: string } }).document;
    if (doc?.visibilityState === "visible") this.ping();
  };
}
