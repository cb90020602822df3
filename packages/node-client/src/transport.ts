/**
 * The two typed clients the SDK uses, both from `@tether/client` (its links, token and version
 * announcement, superjson):
 *  - HTTP for the public, one-shot calls: enrollment and pairing;
 *  - WebSocket (`ws` on Node 20) for a running node: every call over one socket.
 *
 * One `Connection` is one socket's life. tRPC's wsClient would reconnect on its own; here its
 * single entry point into reconnection (`retryDelayMs`, called whenever the socket was lost,
 * failed to open, or the server sent the `reconnect` notification) is turned into a `lost` event
 * and the wsClient is closed, so the node's state machine alone decides when (backoff) and
 * whether (terminal conditions) to connect again — and re-attaches on every new connection.
 */
import {
  createTetherClient,
  isTerminalCloseCode,
  tetherEndpoints,
  type TetherClient,
  type TetherError,
  type TetherErrorCode,
} from '@tether/client';
import {
  CLIENT_VERSION_HEADER,
  CONTRACT_VERSION,
  HANDSHAKE_HEADER,
  HandshakeAnswer,
  RESUME_HEADER,
  decodeHeaderJson,
  encodeHeaderJson,
  type ResumeClaim,
} from '@tether/contracts';
import { createWSClient, type TRPCWebSocketClient } from '@trpc/client';
import WebSocket from 'ws';
import { processKeepAlive } from './keepalive.js';
import { processScheduler } from './scheduler.js';

export type { TetherClient };

/**
 * A typed client over HTTP; `token`, if given, is sent as a bearer token. Every request
 * announces the contract version this SDK was built against (the server's ceiling check).
 */
export function createHttpClient(url: string, options: { token?: string } = {}): TetherClient {
  return createTetherClient({ url, token: options.token });
}

/** Why a connection ended (before the node decides what to do about it). */
export type LossCause =
  | { kind: 'closed'; closeCode: number | undefined; closeReason: string }
  | { kind: 'reconnect_requested' }
  | {
      kind: 'open_failed';
      message: string;
      /** The server refused the session for now (admission limit) and said when to return. */
      retryAfterMs?: number;
    }
  | {
      kind: 'call_failed';
      code: TetherErrorCode;
      message: string;
      /** The refusal itself, when a call or stream on the socket failed (its details count). */
      error?: TetherError;
    }
  | { kind: 'dropped'; reason: string }
  | { kind: 'stopped' };

export interface ConnectionOptions {
  url: string;
  token: string;
  /** WebSocket opening handshake timeout (on the process's shared scheduler). */
  handshakeTimeoutMs: number;
  /**
   * Client-side keep-alive, one check for every socket of the process (`keepalive.ts`): a
   * protocol-level ping after this much silence, the socket dropped without an answer.
   */
  keepAliveIntervalMs: number;
  pongTimeoutMs: number;
  /**
   * What the node was (its attachment, session, version, capabilities digest, health), sent in
   * the upgrade request's `x-tether-resume` header; absent when it has no attachment yet.
   */
  resume?: ResumeClaim | null;
}

/**
 * The wait a refused upgrade asks for: `error.data.tetherError.details.retryAfterMs` of the JSON
 * body (milliseconds), else the `Retry-After` header (seconds). Undefined when neither is usable.
 */
export function refusalRetryAfterMs(
  header: string | string[] | undefined,
  body: Buffer[],
): number | undefined {
  const valid = (n: unknown): n is number =>
    typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= 3_600_000;
  try {
    const parsed = JSON.parse(Buffer.concat(body).toString('utf8')) as {
      error?: { data?: { tetherError?: { details?: { retryAfterMs?: unknown } } } };
    };
    const ms = parsed.error?.data?.tetherError?.details?.retryAfterMs;
    if (valid(ms)) return Math.round(ms);
  } catch {
    // not JSON: fall back to the header
  }
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  return header !== undefined && valid(seconds * 1_000) ? seconds * 1_000 : undefined;
}

/** What a connection's socket reports to its `Connection` (and the settings it opens with). */
interface SocketHooks {
  headers: Record<string, string>;
  options: ConnectionOptions;
  /** A socket of this connection was created; true if the connection is already disposed. */
  adopt(socket: WebSocket): boolean;
  handshake(answer: HandshakeAnswer): void;
  openError(message: string): void;
  reconnectRequested(): void;
  closed(code: number, reason: string): void;
  /** The upgrade was answered with an HTTP status (and maybe a time to come back). */
  refused(status: number | undefined, retryAfterMs: number | undefined): void;
  /** Nothing arrived within the pong timeout of a keep-alive ping. */
  silent(): void;
}

/**
 * Every socket of the process: lets its connection see the socket, its close code
 * (WS_CLOSE.CREDENTIAL_REVOKED = never again) and the server's reconnect notification, before
 * tRPC's own listeners run. One class for all (not one per connection): `ws` then sees sockets
 * of one shape, which its hot paths need (a class per connection cost about 3× the
 * construction time in a 1 250-agent host).
 */
class TrackedWebSocket extends WebSocket {
  constructor(address: string | URL, hooks: SocketHooks) {
    const { options } = hooks;
    super(address, undefined, { perMessageDeflate: false, headers: hooks.headers });
    const disposed = hooks.adopt(this);
    this.on('upgrade', (res) => {
      const raw = res.headers[HANDSHAKE_HEADER];
      const text = Array.isArray(raw) ? raw[0] : raw;
      if (text === undefined) return;
      const decoded = decodeHeaderJson(HandshakeAnswer, text);
      // An answer this SDK cannot read is treated as none: it attaches as before.
      if (decoded.ok) hooks.handshake(decoded.value);
    });
    // The handshake deadline and the keep-alive: the process's shared scheduler, not timers
    // of this socket. A socket still connecting at the deadline is abandoned as ws would
    // (same message); a silent open one is ended at once (a dead peer answers no close).
    const deadline = processScheduler().schedule(options.handshakeTimeoutMs, () => {
      if (this.readyState !== WebSocket.CONNECTING) return;
      hooks.openError('Opening handshake has timed out');
      this.terminate();
    });
    this.once('open', () => deadline.cancel());
    this.once('close', () => deadline.cancel());
    processKeepAlive().watch(
      this,
      { intervalMs: options.keepAliveIntervalMs, pongTimeoutMs: options.pongTimeoutMs },
      () => {
        hooks.silent();
        this.terminate();
      },
    );
    this.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (isBinary) return;
      const text = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      // The notification is `{"id":null,"method":"reconnect"}`; cheap test before parsing.
      if (text.length < 128 && text.includes('"reconnect"')) {
        try {
          const message = JSON.parse(text.toString('utf8')) as { method?: unknown };
          if (message.method === 'reconnect') hooks.reconnectRequested();
        } catch {
          // not ours to judge
        }
      }
    });
    this.on('close', (code: number, reason: Buffer) => hooks.closed(code, reason.toString('utf8')));
    this.on('error', (error: Error) => hooks.openError(error.message));
    // A refused upgrade (503 over the server's admission limit) carries the typed error with
    // `retryAfterMs`: read it (bounded), then abort the handshake as ws would have.
    this.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 16_384) chunks.push(chunk);
      });
      res.on('end', () => {
        const wait = refusalRetryAfterMs(res.headers['retry-after'], chunks);
        hooks.refused(res.statusCode, wait);
        hooks.openError(
          `the server refused the connection (HTTP ${res.statusCode ?? '?'})${wait !== undefined ? `; retry after ${wait} ms` : ''}`,
        );
        this.terminate();
      });
      res.on('error', () => this.terminate());
    });
    // tRPC opens its socket a few microtasks after being asked to: one born after dispose()
    // would otherwise live (watched by the keep-alive) until its handshake deadline.
    if (disposed) this.terminate();
  }
}

/** One WebSocket connection (one socket) and the typed client bound to it. */
export class Connection {
  readonly client: TetherClient;
  readonly #ws: TRPCWebSocketClient;
  readonly #sockets = new Set<WebSocket>();
  #disposed = false;
  readonly lost: Promise<LossCause>;
  #resolveLost!: (cause: LossCause) => void;
  #lostCause: LossCause | null = null;
  readonly #lostListeners = new Set<(cause: LossCause) => void>();
  #opened = false;
  #closeCode: number | undefined;
  #closeReason = '';
  #reconnectRequested = false;
  #openError: string | undefined;
  #retryAfterMs: number | undefined;
  readonly #openedPromise: Promise<void>;
  #resolveOpened!: () => void;
  #handshake: HandshakeAnswer | null = null;
  #unauthorized = false;
  readonly #claim: ResumeClaim | null;

  constructor(options: ConnectionOptions) {
    this.lost = new Promise((resolve) => (this.#resolveLost = resolve));
    this.#openedPromise = new Promise((resolve) => (this.#resolveOpened = resolve));
    this.#claim = options.resume ?? null;
    // The credential, the contract version and the resume claim travel in the upgrade request
    // (no connectionParams message): the server decides before answering, and answers in the
    // 101 response's `x-tether-handshake` header.
    const headers: Record<string, string> = {
      authorization: `Bearer ${options.token}`,
      [CLIENT_VERSION_HEADER]: CONTRACT_VERSION,
      ...(this.#claim !== null ? { [RESUME_HEADER]: encodeHeaderJson(this.#claim) } : {}),
    };
    const hooks: SocketHooks = {
      headers,
      options,
      adopt: (socket) => {
        this.#sockets.add(socket);
        return this.#disposed;
      },
      handshake: (answer) => (this.#handshake = answer),
      openError: (message) => (this.#openError ??= message),
      reconnectRequested: () => (this.#reconnectRequested = true),
      closed: (code, reason) => {
        this.#closeCode = code;
        this.#closeReason = reason;
      },
      refused: (status, retryAfterMs) => {
        // 401: the credential is unknown or revoked (decided at the upgrade): never again.
        if (status === 401) this.#unauthorized = true;
        if (retryAfterMs !== undefined) this.#retryAfterMs = retryAfterMs;
      },
      silent: () =>
        this.#lose({
          kind: 'dropped',
          reason: `keep-alive: nothing received within ${options.pongTimeoutMs} ms of a ping`,
        }),
    };
    // tRPC instantiates its WebSocket class with the URL only: a constructor function that
    // returns this connection's socket (one class for every socket of the process, see
    // `TrackedWebSocket`), with the ready-state constants tRPC reads from the class.
    const TrackedForThis = Object.assign(
      function (address: string | URL) {
        return new TrackedWebSocket(address, hooks);
      },
      {
        CONNECTING: WebSocket.CONNECTING,
        OPEN: WebSocket.OPEN,
        CLOSING: WebSocket.CLOSING,
        CLOSED: WebSocket.CLOSED,
      },
    );

    // The contract version this SDK speaks goes in `x-tether-client-version` (the server refuses
    // a higher MAJOR); the node's own version, compared with session floors, goes in the claim
    // and in `runtimenode.attach`.
    this.#ws = createWSClient({
      url: tetherEndpoints(options.url).ws,
      WebSocket: TrackedForThis as unknown as typeof globalThis.WebSocket,
      // Done above for every socket of the process at once (tRPC's re-arms two timers per
      // socket on every message). The server's text PING is still answered by tRPC.
      keepAlive: { enabled: false },
      onOpen: () => {
        this.#opened = true;
        this.#resolveOpened();
      },
      // tRPC calls this exactly when it would start reconnecting: the connection is over.
      retryDelayMs: () => {
        queueMicrotask(() => this.#lose(this.#describeLoss()));
        return 0;
      },
    });
    this.client = createTetherClient({ url: options.url, transport: 'ws', wsClient: this.#ws });
  }

  /** Resolves once the socket is open (before connectionParams are processed). */
  get opened(): Promise<void> {
    return this.#openedPromise;
  }

  /** The server's answer in the upgrade (null from a server that does not send one). */
  get handshake(): HandshakeAnswer | null {
    return this.#handshake;
  }

  /** The resume claim this connection sent, if any. */
  get claim(): ResumeClaim | null {
    return this.#claim;
  }

  get isOpen(): boolean {
    return this.#opened && this.#lostCause === null;
  }

  get closeCode(): number | undefined {
    return this.#closeCode;
  }

  get lostCause(): LossCause | null {
    return this.#lostCause;
  }

  #describeLoss(): LossCause {
    const closed: LossCause = {
      kind: 'closed',
      closeCode: this.#closeCode,
      closeReason: this.#closeReason,
    };
    // A terminal close (credential revoked) wins over everything: it decides "never again".
    if (this.#closeCode !== undefined && isTerminalCloseCode(this.#closeCode)) return closed;
    if (this.#reconnectRequested) return { kind: 'reconnect_requested' };
    if (!this.#opened && this.#unauthorized) {
      return {
        kind: 'call_failed',
        code: 'auth.unauthenticated',
        message: this.#openError ?? 'the server refused the credential (HTTP 401)',
      };
    }
    if (!this.#opened) {
      return {
        kind: 'open_failed',
        message: this.#openError ?? 'the connection could not be opened',
        ...(this.#retryAfterMs !== undefined ? { retryAfterMs: this.#retryAfterMs } : {}),
      };
    }
    return closed;
  }

  /** Ends this connection (idempotent); `lost` resolves with the first cause. */
  lose(cause: LossCause): void {
    this.#lose(cause);
  }

  /**
   * Calls `listener` with the cause if this connection is lost (at once if it already is);
   * returns the function that stops listening. A call listens only while it is in flight:
   * chaining on `lost` instead would keep every call's closures until the connection ends (a
   * connection that beats every 15 s for a day would hold thousands).
   */
  onLost(listener: (cause: LossCause) => void): () => void {
    if (this.#lostCause !== null) {
      listener(this.#lostCause);
      return () => undefined;
    }
    this.#lostListeners.add(listener);
    return () => void this.#lostListeners.delete(listener);
  }

  /** Listeners registered by calls in flight (tests: none is left behind). */
  get lostListeners(): number {
    return this.#lostListeners.size;
  }

  #lose(cause: LossCause): void {
    if (this.#lostCause !== null) return;
    // A call that failed because the server closed the socket for good is that close.
    this.#lostCause =
      cause.kind !== 'stopped' &&
      this.#closeCode !== undefined &&
      isTerminalCloseCode(this.#closeCode)
        ? this.#describeLoss()
        : cause;
    // Stop tRPC from reconnecting now; sockets are closed by dispose().
    void this.#ws.close().catch(() => undefined);
    this.#resolveLost(this.#lostCause);
    const listeners = [...this.#lostListeners];
    this.#lostListeners.clear();
    for (const listener of listeners) listener(this.#lostCause);
  }

  /**
   * Closes the socket(s). Graceful: a normal close handshake, bounded by `graceMs`, then
   * terminate. Not graceful: terminate at once (the peer is gone or must be abandoned).
   */
  async dispose(graceful: boolean, graceMs = 1_000): Promise<void> {
    this.#disposed = true;
    this.#lose({ kind: 'stopped' });
    const open = [...this.#sockets].filter((s) => s.readyState !== WebSocket.CLOSED);
    if (open.length === 0) return;
    if (!graceful) {
      for (const socket of open) socket.terminate();
      return;
    }
    await Promise.all(
      open.map(
        (socket) =>
          new Promise<void>((resolve) => {
            // On the shared scheduler: a server's reconnect notification disposes every
            // connection of the process at once.
            const timer = processScheduler().schedule(graceMs, () => {
              socket.terminate();
              resolve();
            });
            socket.once('close', () => {
              timer.cancel();
              resolve();
            });
            if (socket.readyState === WebSocket.OPEN) socket.close(1000, 'node stopping');
            else if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
          }),
      ),
    );
  }

  /** Sockets of this connection not yet closed (0 once disposed). */
  get openSockets(): number {
    let n = 0;
    for (const socket of this.#sockets) if (socket.readyState !== WebSocket.CLOSED) n++;
    return n;
  }
}
