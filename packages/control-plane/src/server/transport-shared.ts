/**
 * What the HTTP routes (http-routes.ts) and the WebSocket upgrade path (ws-upgrade.ts) share:
 * what they read from a request (the peer's address, a header, a connectionParams value) and a
 * refused call's error as the error formatter shapes it.
 */
import type { IncomingMessage } from 'node:http';
import { ERROR_REGISTRY, TetherError } from '@tether/contracts';
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

export function batchTooLarge(calls: number, maxCalls: number): TetherError {
  return new TetherError(
    'request.batch_too_large',
    `The batch carries ${calls} calls; at most ${maxCalls} are accepted at once.`,
    { calls, maxCalls },
  );
}
