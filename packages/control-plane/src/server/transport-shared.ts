/**
 * What the HTTP routes (http-routes.ts), the WebSocket upgrade path (ws-upgrade.ts) and the
 * heartbeat fast path (ws-heartbeat.ts) share: what they read from a request (the peer's address,
 * a header, a connectionParams value), a refused call's error as the error formatter shapes it,
 * and answers formatted once for the ones a flood repeats.
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

/** Numbers no real value is: where `formatOnce` puts its slots. */
const SLOT_BASE = 8_765_432_109_870;

/**
 * JSON text formatted once around slots: `build` gets one sentinel number per slot and returns
 * the text; the function returned writes each slot's JSON text (`JSON.stringify` of the value)
 * where its sentinel was, in order. For answers a flood repeats (admission refusals, heartbeat
 * acknowledgements and refusals): formatting a typed error anew (two Error objects and their
 * stacks) or running tRPC's response transform for each of thousands per second was a visible
 * share of the server's CPU (docs/performance.md). The text is the formatter's own.
 */
export function formatOnce(
  slots: number,
  build: (...sentinels: number[]) => string,
): (...values: string[]) => string {
  const sentinels = Array.from({ length: slots }, (_, i) => String(SLOT_BASE + i));
  const parts: string[] = [];
  let rest = build(...sentinels.map(Number));
  for (const sentinel of sentinels) {
    const at = rest.indexOf(sentinel);
    if (at < 0 || rest.indexOf(sentinel, at + 1) >= 0) {
      throw new Error(`formatOnce: slot ${sentinel} must appear exactly once, in order`);
    }
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + sentinel.length);
  }
  parts.push(rest);
  return (...values) => {
    let text = parts[0]!;
    for (let i = 0; i < slots; i++) text += values[i]! + parts[i + 1]!;
    return text;
  };
}

/**
 * The JSON body `{ error }` of a refusal whose only varying part is `retryAfterMs`, formatted
 * once (formatOnce): the formatter's own shape, the wait written where it puts it.
 */
export function refusalBody(
  code: TetherErrorCode,
  message: string,
): (retryAfterMs: number) => string {
  const fill = formatOnce(1, (retryAfterMs) =>
    JSON.stringify({ error: errorShape(new TetherError(code, message, { retryAfterMs })) }),
  );
  return (retryAfterMs) => fill(String(Math.round(retryAfterMs)));
}

export function batchTooLarge(calls: number, maxCalls: number): TetherError {
  return new TetherError(
    'request.batch_too_large',
    `The batch carries ${calls} calls; at most ${maxCalls} are accepted at once.`,
    { calls, maxCalls },
  );
}
