/**
 * Heartbeats over plain HTTP (`POST /trpc/runtimenode.heartbeat`), the path of nodes that do not
 * keep a WebSocket. tRPC's standalone adapter turns every Node request into a fetch `Request` and
 * back (web streams, abort signals, header objects): that emulation was most of the server's
 * busy time per HTTP beat (figures: docs/performance.md). Here the request is read directly. A
 * beat certain to pass the procedure's checks (heartbeat-fast-path.ts, shared with the
 * WebSocket fast path) goes straight to the service; any other goes through the router's own
 * caller — the same procedure, middleware chain, input validation and error formatter — so
 * every refusal stays in one place.
 *
 * Only plain, unbatched JSON POSTs are taken; anything else (batches, other content types, query
 * strings) is left to tRPC's adapter before a byte of the body is read.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { transformTRPCResponse } from '@trpc/server';
import type { Context } from '../trpc/context.js';
import { formatError, TRPCError } from '../trpc/error-formatter.js';
import { createCallerFactory, rootConfig } from '../trpc/init.js';
import { appRouter } from '../trpc/root.js';
import { queueFull, queueRetryAfterMs } from '../runtime-nodes/heartbeat-batch.js';
import {
  admitBeat,
  beatInput,
  HEARTBEAT_PROCEDURE,
  queueFullRefusal,
  serveBeat,
} from './heartbeat-fast-path.js';
import { readBody, sendJson, sendJsonText } from './http-json.js';

const PATH = HEARTBEAT_PROCEDURE;
export const HEARTBEAT_PATH = `/trpc/${PATH}`;
const createCaller = createCallerFactory(appRouter);
/** The answer to an accepted beat (the procedure's output is null), serialised once. */
const ACK = JSON.stringify(transformTRPCResponse(rootConfig, { result: { data: null } }));

/** True when this request is a plain heartbeat call the fast path serves. */
export function isPlainHeartbeat(req: IncomingMessage): boolean {
  if (req.method !== 'POST' || req.url !== HEARTBEAT_PATH) return false;
  const type = req.headers['content-type'];
  return type === undefined || type.split(';')[0]?.trim().toLowerCase() === 'application/json';
}

function sendError(res: ServerResponse, error: TRPCError): void {
  const shape = formatError({ error, path: PATH });
  sendJson(res, shape.data.httpStatus, transformTRPCResponse(rootConfig, { error: shape }));
}

export async function serveHttpHeartbeat(
  req: IncomingMessage,
  res: ServerResponse,
  options: {
    maxBodyBytes: number;
    context: () => Promise<Context>;
    tooLarge: (res: ServerResponse) => void;
    onInternalError: (error: TRPCError) => void;
  },
): Promise<void> {
  let body: string | null;
  try {
    body = await readBody(req, options.maxBodyBytes);
  } catch {
    // The client went away mid-body: nobody to answer.
    return;
  }
  if (body === null) return options.tooLarge(res);
  let input: unknown;
  try {
    input = body === '' ? undefined : beatInput(JSON.parse(body));
  } catch (cause) {
    return sendError(res, new TRPCError({ code: 'PARSE_ERROR', cause: cause }));
  }
  try {
    const ctx = await options.context();
    const beat = admitBeat(ctx, ctx.principal, input);
    if (beat !== null) {
      ctx.deps.metrics.httpHeartbeatFastPath.inc();
      const error = await serveBeat(ctx, beat, null);
      // The shared refusal is for counting; the answer carries a retry spread of its own.
      if (error === queueFullRefusal()) throw queueFull(queueRetryAfterMs());
      if (error !== null) throw error;
      return sendJsonText(res, 200, ACK);
    }
    const data = await createCaller(ctx).runtimenode.heartbeat(input as never);
    sendJson(res, 200, transformTRPCResponse(rootConfig, { result: { data } }));
  } catch (cause) {
    const error =
      cause instanceof TRPCError
        ? cause
        : new TRPCError({ code: 'INTERNAL_SERVER_ERROR', cause: cause });
    if (error.code === 'INTERNAL_SERVER_ERROR') options.onInternalError(error);
    sendError(res, error);
  }
}
