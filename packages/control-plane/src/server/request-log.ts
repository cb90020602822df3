/**
 * One line per HTTP request (pino-http), written when the response is done: method, path
 * (never the query string: tRPC's `connectionParams` and SSE URLs may carry a token there),
 * status, duration, peer address and request id. No header is logged. The request id is the
 * caller's `X-Request-Id` when it is a plain token of at most 128 characters, else a fresh UUID;
 * it is echoed in the response and is the `connectionId` of the calls the request carries, so a
 * request line and its call and audit lines share one id.
 * Volume: successful heartbeats are not logged (one per node per interval would drown the
 * rest), probes and scrapes (`/livez`, `/readyz`, `/metrics`) only at debug; failures always.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { pinoHttp, type HttpLogger } from 'pino-http';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const HEARTBEAT_PATHS = new Set(['/trpc/runtimenode.heartbeat', '/api/v1/runtime-nodes/heartbeat']);
const PROBE_PATHS = new Set(['/livez', '/readyz', '/metrics']);

export function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return (q < 0 ? raw : raw.slice(0, q)).slice(0, 512);
}

/** The request id pino-http gave `req` (set before any handler runs). */
export function requestIdOf(req: IncomingMessage): string {
  const id = (req as IncomingMessage & { id?: unknown }).id;
  return typeof id === 'string' ? id : randomUUID();
}

export function createRequestLogger(
  log: Logger,
  peerOf: (req: IncomingMessage) => string,
): HttpLogger {
  return pinoHttp({
    logger: log,
    genReqId: (req: IncomingMessage, res: ServerResponse) => {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('x-request-id', id);
      return id;
    },
    // Our own shapes, not the standard serializers' (which include every header).
    wrapSerializers: false,
    serializers: {
      req: (req: IncomingMessage & { id?: unknown }) => ({
        id: req.id,
        method: req.method,
        path: pathOf(req.url),
      }),
      res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
    },
    customAttributeKeys: { responseTime: 'durationMs' },
    customProps: (req: IncomingMessage) => ({
      transport: 'http',
      connectionId: requestIdOf(req),
      peer: peerOf(req),
    }),
    quietReqLogger: true,
    customLogLevel: (req: IncomingMessage, res: ServerResponse, error?: Error) => {
      if (error || res.statusCode >= 500) return 'error';
      const path = pathOf(req.url);
      if (res.statusCode < 400 && HEARTBEAT_PATHS.has(path)) return 'silent';
      if (res.statusCode < 400 && PROBE_PATHS.has(path)) return 'debug';
      return 'info';
    },
    customSuccessMessage: (req: IncomingMessage, res: ServerResponse) =>
      `${req.method} ${pathOf(req.url)} ${res.statusCode}`,
    customErrorMessage: (req: IncomingMessage, res: ServerResponse) =>
      `${req.method} ${pathOf(req.url)} ${res.statusCode}`,
  });
}
