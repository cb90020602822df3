/**
 * One line per HTTP request, written when the response is done: method, path (never the query
 * string: tRPC's `connectionParams` and SSE URLs may carry a token there), status, duration,
 * peer address and request id. No header is logged. The request id is the caller's
 * `X-Request-Id` when it is a plain token of at most 128 characters, else a fresh UUID; it is
 * echoed in the response and is the `connectionId` of the calls the request carries, so a
 * request line and its call and audit lines share one id.
 * Volume: successful heartbeats are not logged (one per node per interval would drown the
 * rest), probes and scrapes (`/livez`, `/readyz`, `/metrics`) only at debug; failures always.
 *
 * Written by hand rather than with pino-http (decision 0024): pino-http builds three child
 * loggers per request before it knows whether the line will be written, and with our redaction
 * paths each child re-serialises its bindings — a cost every heartbeat paid for a line it never
 * writes. Here nothing is built until a line is due.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Level, Logger } from 'pino';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const HEARTBEAT_PATHS = new Set(['/trpc/runtimenode.heartbeat', '/api/v1/runtime-nodes/heartbeat']);
const PROBE_PATHS = new Set(['/livez', '/readyz', '/metrics']);

/** The request id this module gave a request (set before any handler runs). */
const REQUEST_IDS = new WeakMap<IncomingMessage, string>();

export function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return (q < 0 ? raw : raw.slice(0, q)).slice(0, 512);
}

/** The request id the request logger gave `req` (a fresh one if it never saw it). */
export function requestIdOf(req: IncomingMessage): string {
  return REQUEST_IDS.get(req) ?? randomUUID();
}

function levelOf(path: string, statusCode: number, failed: boolean): Level | null {
  if (failed || statusCode >= 500) return 'error';
  if (statusCode < 400 && HEARTBEAT_PATHS.has(path)) return null;
  if (statusCode < 400 && PROBE_PATHS.has(path)) return 'debug';
  return 'info';
}

/**
 * The request listener's first step: gives `req` its id (echoed as `X-Request-Id`) and writes
 * its line when the response is finished, fails or is abandoned by the client (`aborted: true`).
 */
export function createRequestLogger(
  log: Logger,
  peerOf: (req: IncomingMessage) => string,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    REQUEST_IDS.set(req, id);
    res.setHeader('x-request-id', id);
    const started = performance.now();
    const done = (err?: Error): void => {
      res.off('finish', done);
      res.off('close', done);
      res.off('error', done);
      const path = pathOf(req.url);
      const level = levelOf(path, res.statusCode, err !== undefined);
      if (level === null || !log.isLevelEnabled(level)) return;
      const aborted = !res.writableFinished;
      log[level](
        {
          req: { id, method: req.method, path },
          res: { statusCode: res.statusCode },
          durationMs: Math.round(performance.now() - started),
          transport: 'http',
          connectionId: id,
          peer: peerOf(req),
          ...(aborted ? { aborted } : {}),
          ...(err ? { err } : {}),
        },
        `${req.method} ${path} ${res.statusCode}`,
      );
    };
    res.on('finish', done);
    res.on('close', done);
    res.on('error', done);
  };
}
