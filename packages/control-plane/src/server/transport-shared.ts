/**
 * What the HTTP routes (http-routes.ts) and the WebSocket upgrade path (ws-upgrade.ts) share:
 * what they read from a request (the peer's address, a header, a connectionParams value) and a
 * refused call's error as the error formatter shapes it.
 */
import type { IncomingMessage } from 'node:http';
import { ERROR_REGISTRY, TetherError, type TetherErrorCode } from '@tether/contracts';
import { formatError, TRPCError } from '../trpc/error-formatter.js';

/** Whether the server is draining and whether it is ready (`/readyz`), as the host sets them. */
export interface HostState {
  draining: boolean;
  ready: boolean;
}

export function peerAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

export function headerValue(value: string | string[] | undefined, max = 128): string | null {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined ? null : v.slice(0, max);
}

export function stringParam(
  params: Record<string, string | undefined> | null | undefined,
  key: string,
  max: number,
): string | null {
  const value = params?.[key];
  return typeof value === 'string' ? value.slice(0, max) : null;
}

/** A refused call's error as the error formatter shapes it. */
export function errorShape(error: TetherError, path?: string): ReturnType<typeof formatError> {
  return formatError({
    error: new TRPCError({ code: ERROR_REGISTRY[error.code].trpcCode, cause: error }),
    path,
  });
}

/** A number no real wait is: where `retryAfterMs` goes in a refusal template. */
const RETRY_AFTER_SENTINEL = 8_765_432_109_876;

/**
 * The JSON body `{ error }` of a refusal whose only varying part is `retryAfterMs`, formatted once:
 * formatting the typed error anew (two Error objects and their stacks) for each of a reconnect
 * wave's thousands of refusals was a visible share of its CPU (docs/performance.md, "Admission").
 * The result is the formatter's own shape, the wait written where it puts it.
 */
export function refusalBody(
  code: TetherErrorCode,
  message: string,
): (retryAfterMs: number) => string {
  const error = new TetherError(code, message, { retryAfterMs: RETRY_AFTER_SENTINEL });
  const parts = JSON.stringify({ error: errorShape(error) }).split(String(RETRY_AFTER_SENTINEL));
  return (retryAfterMs) => parts.join(String(Math.round(retryAfterMs)));
}

export function batchTooLarge(calls: number, maxCalls: number): TetherError {
  return new TetherError(
    'request.batch_too_large',
    `The batch carries ${calls} calls; at most ${maxCalls} are accepted at once.`,
    { calls, maxCalls },
  );
}
