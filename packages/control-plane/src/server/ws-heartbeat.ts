/**
 * The heartbeat fast path on WebSockets. A node's socket is authenticated once, at connect; most
 * of what it sends afterwards is `runtimenode.heartbeat`, thousands per second across a fleet.
 * Through tRPC each of those pays the generic call machinery (an AbortController, the middleware
 * chain with its context copies, input and output parsing, the response transform), which is
 * what capped WebSocket ingest (figures: docs/performance.md, decision 0003).
 *
 * Here a frame is looked at right after JSON parsing, inside the connection's decoder (tRPC's
 * `experimental_encoder` hook, see ws-guard.ts). A heartbeat on an open, authenticated node
 * socket that is certain to pass the procedure's checks (heartbeat-fast-path.ts) is handed
 * straight to the same service the procedure calls, and answered with the same frame tRPC would
 * send (the same error formatter on failure, the same metrics and logs). Anything else,
 * including every frame that would fail one of those checks, goes to tRPC unchanged, so errors
 * keep one source of truth: the procedures.
 */
import { transformTRPCResponse } from '@trpc/server';
import type { WebSocket } from 'ws';
import { queueFull, queueRetryAfterMs } from '../runtime-nodes/heartbeat-batch.js';
import type { Context } from '../trpc/context.js';
import { formatError } from '../trpc/error-formatter.js';
import { rootConfig } from '../trpc/init.js';
import type { ConnectionRegistry } from './connections.js';
import {
  admitBeat,
  beatInput,
  HEARTBEAT_PROCEDURE,
  queueFullRefusal,
  serveBeat,
  versionAccepted,
} from './heartbeat-fast-path.js';
import { errorShape, formatOnce } from './transport-shared.js';

const PATH = HEARTBEAT_PROCEDURE;

type Envelope = { id: number | string; jsonrpc?: '2.0' };
type ResponseFrame = Parameters<typeof transformTRPCResponse>[1];

/** The frame tRPC would write for `frame`: serialised with the router's transformer. */
export const responseText = (frame: ResponseFrame): string =>
  JSON.stringify(transformTRPCResponse(rootConfig, frame));

/**
 * The two answers every beat of a busy fleet gets — acknowledged, or refused because the
 * batcher's queue is full — formatted once per envelope shape (with and without `jsonrpc`),
 * with slots for the call's id and the refusal's `retryAfterMs` (formatOnce).
 */
function answers(jsonrpc: boolean) {
  const envelope = (id: number): Envelope => (jsonrpc ? { id, jsonrpc: '2.0' } : { id });
  return {
    ok: formatOnce(1, (id) =>
      responseText({ ...envelope(id), result: { type: 'data', data: null } }),
    ),
    full: formatOnce(2, (id, retryAfterMs) =>
      responseText({ ...envelope(id), error: errorShape(queueFull(retryAfterMs), PATH) }),
    ),
  };
}
const ANSWERS = { plain: answers(false), jsonrpc: answers(true) };

/** A beat's acknowledgement (as formatted by `answers`; exported for its test). */
export const ackFrame = (id: number | string, jsonrpc: boolean): string =>
  (jsonrpc ? ANSWERS.jsonrpc : ANSWERS.plain).ok(JSON.stringify(id));

/** A beat's refusal while the batcher's queue is full (as formatted by `answers`). */
export const queueFullFrame = (id: number | string, jsonrpc: boolean, retryAfterMs: number) =>
  (jsonrpc ? ANSWERS.jsonrpc : ANSWERS.plain).full(JSON.stringify(id), String(retryAfterMs));

interface HeartbeatFrame {
  id: number | string;
  jsonrpc?: '2.0';
  params: { input: unknown };
}

function isHeartbeatFrame(msg: unknown): msg is HeartbeatFrame {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return false;
  const frame = msg as Record<string, unknown>;
  const params = frame.params as Record<string, unknown> | undefined;
  return (
    frame.method === 'mutation' &&
    (typeof frame.id === 'number' || typeof frame.id === 'string') &&
    (frame.jsonrpc === undefined || frame.jsonrpc === '2.0') &&
    typeof params === 'object' &&
    params !== null &&
    params.path === PATH &&
    params.lastEventId === undefined
  );
}

export class WsHeartbeatFastPath {
  readonly #connections: ConnectionRegistry;
  /** Each authenticated socket's context, once tRPC's createContext has built it. */
  readonly #contexts = new WeakMap<WebSocket, Context>();

  constructor(connections: ConnectionRegistry) {
    this.#connections = connections;
  }

  /**
   * Called from createContext: from now on this socket's heartbeats may take the fast path. A
   * socket that announced a contract version the server does not accept is decided here, once:
   * its calls all go to tRPC, which refuses them.
   */
  register(socket: WebSocket, ctx: Context): void {
    if (ctx.principal?.kind !== 'node' || !versionAccepted(ctx.clientContractVersion)) return;
    this.#contexts.set(socket, ctx);
  }

  /**
   * Serves `msg` if it is a heartbeat the fast path may take (called by the socket's decoder,
   * ws-guard.ts); false leaves it to tRPC.
   */
  tryServe(socket: WebSocket, msg: unknown): boolean {
    if (!isHeartbeatFrame(msg)) return false;
    const ctx = this.#contexts.get(socket);
    if (!ctx || socket.readyState !== socket.OPEN) return false;
    let input: unknown;
    try {
      input = beatInput(msg.params.input);
    } catch {
      return false;
    }
    const beat = admitBeat(ctx, this.#connections.principalOf(socket), input);
    if (beat === null) return false;

    ctx.deps.metrics.wsHeartbeatFastPath.inc();
    const { id } = msg;
    const jsonrpc = msg.jsonrpc !== undefined;
    void serveBeat(ctx, beat, ctx.connectionId).then((error) => {
      if (socket.readyState !== socket.OPEN) return;
      if (error === null) return socket.send(ackFrame(id, jsonrpc));
      if (error === queueFullRefusal()) {
        return socket.send(queueFullFrame(id, jsonrpc, queueRetryAfterMs()));
      }
      const envelope: Envelope = jsonrpc ? { id, jsonrpc: '2.0' } : { id };
      socket.send(responseText({ ...envelope, error: formatError({ error, path: PATH }) }));
    });
    return true;
  }
}
