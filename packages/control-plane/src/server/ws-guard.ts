/**
 * Limits on what one WebSocket, and one peer address, may hold or send. Invariants:
 *  - a frame is looked at right after JSON parsing (tRPC's `experimental_encoder` decoder hook),
 *    before tRPC validates or dispatches any call in it: an array frame with more than
 *    `maxBatchCalls` calls is refused whole, each call with a `request.batch_too_large` error
 *    frame of its id (the JSON-RPC answer tRPC itself gives a refused call), and nothing runs;
 *    a frame more than `ANSWERED_BATCH_FACTOR` times over closes the socket with 1009 instead;
 *  - a socket has at most `maxInFlight` calls unanswered (subscriptions count until they stop):
 *    a call beyond that is answered `rate_limited` at once and never dispatched; the socket stays
 *    open, and a slot frees when one of its calls is answered;
 *  - a socket opened with `connectionParams=1` that has not sent them within `authDeadlineMs`
 *    is closed with `WS_CLOSE.UNAUTHENTICATED_TIMEOUT`; one without a principal (no token, or a
 *    rejected one) may call public procedures, and is closed with the same code once it has
 *    had no call in flight for `anonymousIdleMs`;
 *  - at most `maxUnauthenticatedPerPeer` sockets of one peer address are unauthenticated at any
 *    time (waiting for connectionParams, or without a principal): a further upgrade from it is
 *    refused before it becomes a WebSocket (the host answers 429).
 * Everything here is per process and costs a few map operations per frame.
 */
import { WS_CLOSE, type TetherError } from '@tether/contracts';
import type { WebSocket } from 'ws';
import { frameText } from '../trpc/transformer.js';

/** What tRPC's WebSocket handler asks of an encoder (JSON in text frames, as its default). */
export interface FrameCodec {
  encode(data: unknown): string;
  decode(data: string | ArrayBuffer | Uint8Array): unknown;
}

export interface WsGuardOptions {
  maxBatchCalls: number;
  maxInFlight: number;
  authDeadlineMs: number;
  anonymousIdleMs: number;
  maxUnauthenticatedPerPeer: number;
  /** Monotonic clock (ms). */
  now?: () => number;
}

export type RefusalReason = 'batch' | 'in_flight' | 'unauthenticated_per_peer';
export type TimeoutReason = 'connection_params' | 'anonymous_idle';

export interface WsGuardHooks {
  /**
   * Sends one error frame per refused call, all with the same error (the host formats it once,
   * as tRPC would, and writes the frames corked: a refusal must cost far less than serving).
   */
  sendErrors(socket: WebSocket, calls: RefusedCall[], error: TetherError): void;
  refusalError(reason: 'batch' | 'in_flight', details: Record<string, number>): TetherError;
  onRefusal?(reason: RefusalReason, calls: number): void;
  onTimeout?(reason: TimeoutReason): void;
}

export interface RefusedCall {
  id: number | string;
  jsonrpc: '2.0' | undefined;
}

type Phase = 'awaiting_params' | 'anonymous' | 'authenticated' | 'closed';

interface InFlightCall {
  count: number;
  subscription: boolean;
}

interface SocketState {
  peer: string;
  phase: Phase;
  timer: NodeJS.Timeout | undefined;
  /** Unanswered calls by id (a client may reuse an id once answered). */
  calls: Map<number | string, InFlightCall>;
  inFlight: number;
  /** Last call received or answered (monotonic ms): the anonymous idle clock. */
  lastActivity: number;
}

type Call = {
  id: number | string;
  jsonrpc?: '2.0';
  method: 'query' | 'mutation' | 'subscription';
  params: { path: string };
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A frame up to this many times over the batch limit has each call answered with
 * `request.batch_too_large` (a client that queued a few too many calls in one tick); a larger
 * one closes the socket with 1009, the code `ws` uses for a frame over the size limit.
 */
export const ANSWERED_BATCH_FACTOR = 4;
const CLOSE_MESSAGE_TOO_BIG = 1009;

/** How long a closed socket may take to answer the closing handshake before it is cut. */
const CLOSE_GRACE_MS = 1_000;

/**
 * Closes with a code the client can read, and cuts the connection if the client does not
 * complete the closing handshake soon (`ws` would wait 30 s): a client that ignores it is the
 * kind these limits are for.
 */
function closeSoon(socket: WebSocket, code: number, reason: string): void {
  socket.close(code, reason);
  setTimeout(() => {
    if (socket.readyState !== socket.CLOSED) socket.terminate();
  }, CLOSE_GRACE_MS).unref();
}

const PROCEDURE_TYPES = new Set(['query', 'mutation', 'subscription']);

/**
 * The structure tRPC's own message parser requires (parseTRPCMessage). A frame with one message
 * that fails it is rejected by tRPC as a whole, so none of its calls would run or be answered:
 * such frames are passed on without counting anything.
 */
function wellFormed(msg: unknown): boolean {
  if (!isObject(msg)) return false;
  const { id, jsonrpc, method, params } = msg;
  if (id !== null && typeof id !== 'string' && (typeof id !== 'number' || Number.isNaN(id)))
    return false;
  if (jsonrpc !== undefined && jsonrpc !== '2.0') return false;
  if (method === 'subscription.stop') return true;
  if (typeof method !== 'string' || !PROCEDURE_TYPES.has(method) || !isObject(params)) return false;
  return (
    typeof params.path === 'string' &&
    (params.lastEventId === undefined || typeof params.lastEventId === 'string')
  );
}

/** A call tRPC will run and answer under its id (a null id is answered at once, uncounted). */
function isCall(msg: unknown): msg is Call {
  return (
    isObject(msg) &&
    (typeof msg.id === 'number' || typeof msg.id === 'string') &&
    typeof msg.method === 'string' &&
    PROCEDURE_TYPES.has(msg.method)
  );
}

/** The id to answer a message under (none for a null id or a subscription stop). */
function refusedCallOf(msg: unknown): RefusedCall | null {
  if (!isObject(msg) || (typeof msg.id !== 'number' && typeof msg.id !== 'string')) return null;
  if (msg.method === 'subscription.stop') return null;
  return { id: msg.id, jsonrpc: msg.jsonrpc === '2.0' ? '2.0' : undefined };
}

export class WsGuard {
  readonly #options: Required<WsGuardOptions>;
  readonly #hooks: WsGuardHooks;
  readonly #sockets = new WeakMap<WebSocket, SocketState>();
  /** Unauthenticated sockets per peer address (entries removed at zero). */
  readonly #unauthenticated = new Map<string, number>();

  constructor(options: WsGuardOptions, hooks: WsGuardHooks) {
    this.#options = { now: () => performance.now(), ...options };
    this.#hooks = hooks;
  }

  /** Unauthenticated sockets of this peer right now. */
  unauthenticatedOf(peer: string): number {
    return this.#unauthenticated.get(peer) ?? 0;
  }

  /**
   * Before an upgrade: 0 to go ahead, else a hint in ms for when to come back (the
   * connectionParams deadline: by then each of the peer's sockets still waiting for them has
   * authenticated or been closed).
   */
  admit(peer: string): number {
    if (this.unauthenticatedOf(peer) < this.#options.maxUnauthenticatedPerPeer) return 0;
    this.#hooks.onRefusal?.('unauthenticated_per_peer', 0);
    return this.#options.authDeadlineMs;
  }

  /** A new socket: unauthenticated until its context says otherwise. */
  open(socket: WebSocket, peer: string, awaitsConnectionParams: boolean): void {
    const state: SocketState = {
      peer,
      phase: 'awaiting_params',
      timer: undefined,
      calls: new Map(),
      inFlight: 0,
      lastActivity: this.#options.now(),
    };
    this.#sockets.set(socket, state);
    this.#unauthenticated.set(peer, this.unauthenticatedOf(peer) + 1);
    socket.once('close', () => {
      clearTimeout(state.timer);
      if (state.phase === 'awaiting_params' || state.phase === 'anonymous') this.#release(peer);
      state.phase = 'closed';
      state.calls.clear();
    });
    if (awaitsConnectionParams) {
      state.timer = setTimeout(() => {
        if (state.phase !== 'awaiting_params') return;
        this.#hooks.onTimeout?.('connection_params');
        closeSoon(socket, WS_CLOSE.UNAUTHENTICATED_TIMEOUT, 'connectionParams not sent in time');
      }, this.#options.authDeadlineMs);
      state.timer.unref();
    }
  }

  /** tRPC is building this socket's context: connectionParams (if any) have arrived. */
  paramsReceived(socket: WebSocket): void {
    const state = this.#sockets.get(socket);
    if (state?.phase === 'awaiting_params') clearTimeout(state.timer);
  }

  /** The context is built: with a principal the socket leaves the unauthenticated count. */
  authenticated(socket: WebSocket, hasPrincipal: boolean): void {
    const state = this.#sockets.get(socket);
    if (!state || state.phase !== 'awaiting_params') return;
    clearTimeout(state.timer);
    if (hasPrincipal) {
      state.phase = 'authenticated';
      this.#release(state.peer);
      return;
    }
    state.phase = 'anonymous';
    state.lastActivity = this.#options.now();
    this.#armIdle(socket, state);
  }

  #release(peer: string): void {
    const left = this.unauthenticatedOf(peer) - 1;
    if (left > 0) this.#unauthenticated.set(peer, left);
    else this.#unauthenticated.delete(peer);
  }

  /** Re-armed only when it fires: a busy anonymous socket costs a timestamp write per frame. */
  #armIdle(socket: WebSocket, state: SocketState): void {
    const due = state.lastActivity + this.#options.anonymousIdleMs - this.#options.now();
    state.timer = setTimeout(
      () => {
        if (state.phase !== 'anonymous') return;
        if (state.inFlight > 0) state.lastActivity = this.#options.now();
        if (this.#options.now() - state.lastActivity >= this.#options.anonymousIdleMs) {
          this.#hooks.onTimeout?.('anonymous_idle');
          closeSoon(
            socket,
            WS_CLOSE.UNAUTHENTICATED_TIMEOUT,
            'no credential and no call in flight',
          );
          return;
        }
        this.#armIdle(socket, state);
      },
      Math.max(0, Math.ceil(due)),
    );
    state.timer.unref();
  }

  /**
   * The codec for one socket. `serveFast` may answer a frame itself (the heartbeat fast path,
   * ws-heartbeat.ts); it then becomes an empty batch for tRPC.
   */
  codecFor(socket: WebSocket, serveFast: (msg: unknown) => boolean): FrameCodec {
    return {
      encode: (data) => {
        this.#answered(socket, data);
        return frameText(data);
      },
      decode: (data) => {
        if (typeof data !== 'string') {
          throw new Error('Binary frames are not supported: JSON uses text frames.');
        }
        const msg: unknown = JSON.parse(data);
        if (Array.isArray(msg) && msg.length > this.#options.maxBatchCalls) {
          this.#refuseBatch(socket, msg);
          return [];
        }
        if (serveFast(msg)) return [];
        return this.#admit(socket, msg);
      },
    };
  }

  #refuseBatch(socket: WebSocket, msgs: unknown[]): void {
    this.#hooks.onRefusal?.('batch', msgs.length);
    const maxCalls = this.#options.maxBatchCalls;
    if (msgs.length > ANSWERED_BATCH_FACTOR * maxCalls) {
      // Answering thousands of calls one by one would cost more than serving a few: treated
      // like a frame over the size limit.
      closeSoon(
        socket,
        CLOSE_MESSAGE_TOO_BIG,
        `batch of ${msgs.length} calls; at most ${maxCalls}`,
      );
      return;
    }
    const error = this.#hooks.refusalError('batch', {
      calls: msgs.length,
      maxCalls: this.#options.maxBatchCalls,
    });
    const calls: RefusedCall[] = [];
    for (const msg of msgs) {
      const call = refusedCallOf(msg);
      if (call) calls.push(call);
    }
    this.#hooks.sendErrors(socket, calls, error);
  }

  /** Counts the frame's calls in; those over the in-flight limit are answered and dropped. */
  #admit(socket: WebSocket, msg: unknown): unknown {
    const state = this.#sockets.get(socket);
    if (!state || state.phase === 'closed') return msg;
    const msgs = Array.isArray(msg) ? msg : [msg];
    if (!msgs.every(wellFormed)) return msg;
    state.lastActivity = this.#options.now();
    const refused: RefusedCall[] = [];
    const admitted: unknown[] = [];
    for (const m of msgs) {
      if (!isCall(m)) {
        admitted.push(m);
        continue;
      }
      if (state.inFlight >= this.#options.maxInFlight) {
        refused.push({ id: m.id, jsonrpc: m.jsonrpc });
        continue;
      }
      const entry = state.calls.get(m.id);
      if (entry) {
        entry.count++;
        entry.subscription ||= m.method === 'subscription';
      } else {
        state.calls.set(m.id, { count: 1, subscription: m.method === 'subscription' });
      }
      state.inFlight++;
      admitted.push(m);
    }
    if (refused.length === 0) return msg;
    this.#hooks.onRefusal?.('in_flight', refused.length);
    this.#hooks.sendErrors(
      socket,
      refused,
      this.#hooks.refusalError('in_flight', { maxInFlight: this.#options.maxInFlight }),
    );
    return Array.isArray(msg) ? admitted : [];
  }

  /** A response leaves: a call's last answer frees its slot. */
  #answered(socket: WebSocket, data: unknown): void {
    if (!isObject(data) || (typeof data.id !== 'number' && typeof data.id !== 'string')) return;
    const state = this.#sockets.get(socket);
    const entry = state?.calls.get(data.id);
    if (!state || !entry) return;
    const result = isObject(data.result) ? data.result : undefined;
    const last =
      'error' in data ||
      result?.type === 'stopped' ||
      (!entry.subscription && result?.type === 'data');
    if (!last) return;
    if (--entry.count === 0) state.calls.delete(data.id);
    state.inFlight--;
    state.lastActivity = this.#options.now();
  }
}
