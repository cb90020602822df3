/**
 * The HTTP side of the host: one request listener routing /livez, /readyz, /metrics, tRPC over
 * HTTP at /trpc (with the plain-heartbeat fast path), REST at /api/v1 (+ openapi.json and the
 * SSE events stream), the /api/docs page, the server's index for scripts and the dashboard; and
 * the count of requests in flight, for a drain to wait on.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_REGISTRY, TetherError } from '@tether/contracts';
import { transformTRPCResponse } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { bearerToken, buildContext, type Context, type Deps } from '../trpc/context.js';
import type { TRPCError } from '../trpc/error-formatter.js';
import { rootConfig } from '../trpc/init.js';
import { appRouter } from '../trpc/root.js';
import { createDashboardHandler, isDashboardPath } from './dashboard.js';
import type { HostOptions } from './host.js';
import { isPlainHeartbeat, serveHttpHeartbeat } from './http-heartbeat.js';
import { sendJson, sendJsonText } from './http-json.js';
import { serveMetrics } from './metrics-http.js';
import { createDocsHandler, DOCS_PATH } from './rest/docs.js';
import { createEventStreamHandler, EVENTS_PATH } from './rest/events.js';
import { createRestHandler, REST_PREFIX, sendRestError, TOO_LARGE } from './rest/handler.js';
import { buildOpenApiDocument } from './rest/openapi.js';
import { RestRoutes } from './rest/routes.js';
import { createRequestLogger, requestIdOf } from './request-log.js';
import {
  batchTooLarge,
  errorShape,
  headerValue,
  peerAddress,
  stringParam,
  type HostState,
} from './transport-shared.js';

/** `Accept` names JSON and not HTML: a script asking for the server's index, not a browser. */
function prefersJson(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}

/** Do not read the rest of an oversized body: close the connection after answering. */
function closeAfter(res: ServerResponse): void {
  res.once('finish', () => res.socket?.destroy());
}

function restTooLarge(res: ServerResponse): void {
  sendRestError(res, TOO_LARGE());
  closeAfter(res);
}

/** The request's URL (path and query), or null when it cannot be parsed. */
function requestUrl(req: IncomingMessage): URL | null {
  try {
    return new URL(`http://localhost${(req.url ?? '/').startsWith('/') ? req.url : '/'}`);
  } catch {
    return null;
  }
}

/** 413 for a body over the limit, as tRPC answers one (the formatter's shape, its path). */
function tooLarge(res: ServerResponse): void {
  const error = new TetherError('request.too_large', 'The request body exceeds the size limit.');
  const shape = errorShape(error, singleCallPath(res.req.url ?? '/'));
  sendJson(res, shape.data.httpStatus, transformTRPCResponse(rootConfig, { error: shape }));
  closeAfter(res);
}

/** The procedure a `/trpc/<path>` request calls; undefined for a batch or an unreadable path. */
function singleCallPath(url: string): string | undefined {
  const q = url.indexOf('?');
  if (q >= 0 && new URLSearchParams(url.slice(q + 1)).get('batch') === '1') return undefined;
  const path = (q < 0 ? url : url.slice(0, q)).slice('/trpc/'.length);
  try {
    return path === '' ? undefined : decodeURIComponent(path);
  } catch {
    return undefined;
  }
}

/**
 * The calls one HTTP request carries: tRPC batches as `/trpc/a,b,c?batch=1` (the paths decoded,
 * then split on commas, as tRPC does).
 */
function httpBatchCalls(url: string): number {
  const q = url.indexOf('?');
  if (q < 0 || new URLSearchParams(url.slice(q + 1)).get('batch') !== '1') return 1;
  const path = url.slice(0, q);
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // tRPC refuses an undecodable path itself.
  }
  let calls = 1;
  for (let i = decoded.indexOf(','); i >= 0; i = decoded.indexOf(',', i + 1)) calls++;
  return calls;
}

export interface HttpRouting {
  /** The HTTP server's request listener. */
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Resolves once no HTTP request is in flight (SSE streams included). */
  idle: () => Promise<void>;
}

export function createHttpRouting(
  deps: Deps,
  options: HostOptions,
  state: Readonly<HostState>,
): HttpRouting {
  const httpContext = (
    req: IncomingMessage,
    res: ServerResponse,
    connectionParams: Record<string, string | undefined> | null,
  ): Promise<Context> =>
    buildContext(deps, {
      // SSE subscriptions from a browser cannot set headers: tRPC's connectionParams (in the
      // URL) may carry the token instead.
      token: bearerToken(req.headers.authorization) ?? stringParam(connectionParams, 'token', 4096),
      clientContractVersion:
        headerValue(req.headers['x-tether-client-version']) ??
        stringParam(connectionParams, 'clientVersion', 128),
      transport: 'http',
      peer: peerAddress(req, options.trustProxy),
      // The request id of its log line (request-log.ts): one id for the request and its calls.
      connectionId: requestIdOf(req),
      // A stream (SSE) holds the credential from its first signal() until the response closes.
      lifetime: {
        eager: false,
        onClose: (release) => (res.closed ? release() : res.once('close', release)),
      },
    });
  const logInternal = (error: TRPCError, path: string | undefined): void => {
    if (error.code === 'INTERNAL_SERVER_ERROR' && !(error.cause && 'code' in error.cause)) {
      deps.log.error({ err: error.cause ?? error, procedure: path }, 'unhandled error');
    }
  };
  const trpcHttp = createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    maxBodySize: options.maxBodyBytes,
    createContext: ({ req, res, info }) => httpContext(req, res, info.connectionParams),
    onError: ({ error, path }) => logInternal(error, path),
  });

  // REST: the route table and the OpenAPI document are built once, from the procedures.
  const restRoutes = new RestRoutes(appRouter);
  const openApiJson = JSON.stringify(buildOpenApiDocument(restRoutes));
  const restContext = (req: IncomingMessage, res: ServerResponse): Promise<Context> =>
    httpContext(req, res, null);
  const rest = createRestHandler({
    routes: restRoutes,
    maxBodyBytes: options.maxBodyBytes,
    context: restContext,
    tooLarge: restTooLarge,
    onInternalError: logInternal,
  });
  const eventStream = createEventStreamHandler({
    context: restContext,
    keepAliveMs: options.sseKeepAliveMs,
    onInternalError: logInternal,
  });
  const docs = createDocsHandler();
  const dashboard = createDashboardHandler(options.dashboard, (res) =>
    sendJson(res, 404, { error: 'not found' }),
  );

  const requestLog = createRequestLogger(deps.log, (req) => peerAddress(req, options.trustProxy));
  let httpInFlight = 0;
  let httpIdleWaiters: (() => void)[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    requestLog(req, res);
    httpInFlight++;
    res.once('close', () => {
      if (--httpInFlight > 0) return;
      const waiters = httpIdleWaiters;
      httpIdleWaiters = [];
      for (const wake of waiters) wake();
    });
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/livez') return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      if (state.draining || !state.ready)
        return sendJson(res, 503, { status: state.draining ? 'draining' : 'starting' });
      deps.db
        .query('SELECT 1')
        .then(() => sendJson(res, 200, { status: 'ready' }))
        .catch(() => sendJson(res, 503, { status: 'database unavailable' }));
      return;
    }
    if (path === '/metrics') {
      if (!options.metrics.onMainPort) {
        return sendJson(res, 404, { error: 'not found', reason: options.metrics.notServedReason });
      }
      return serveMetrics(req, res, deps.metrics.registry, options.metrics.token);
    }
    if (path === '/trpc' || path.startsWith('/trpc/')) {
      if (options.cors.handle(req, res)) return;
      const declared = Number(req.headers['content-length'] ?? 0);
      if (Number.isFinite(declared) && declared > options.maxBodyBytes) return tooLarge(res);
      if (state.draining) res.setHeader('connection', 'close');
      const calls = httpBatchCalls(req.url ?? '/');
      if (calls > options.maxBatchCalls) {
        // Refused before any context, authentication or call: the calls never run.
        deps.metrics.transportRefusals.inc({ reason: 'batch' });
        sendJson(
          res,
          ERROR_REGISTRY['request.batch_too_large'].httpStatus,
          transformTRPCResponse(rootConfig, {
            error: errorShape(batchTooLarge(calls, options.maxBatchCalls)),
          }),
        );
        res.once('finish', () => res.socket?.destroy());
        return;
      }
      if (isPlainHeartbeat(req)) {
        // Heartbeats skip tRPC's fetch emulation, not its procedure (http-heartbeat.ts).
        void serveHttpHeartbeat(req, res, {
          maxBodyBytes: options.maxBodyBytes,
          context: () => httpContext(req, res, null),
          tooLarge,
          onInternalError: (error) => logInternal(error, 'runtimenode.heartbeat'),
        });
        return;
      }
      return trpcHttp(req, res);
    }
    if (path === REST_PREFIX || path.startsWith(`${REST_PREFIX}/`)) {
      if (options.cors.handle(req, res)) return;
      if (state.draining) res.setHeader('connection', 'close');
      const url = requestUrl(req);
      if (url === null) {
        return sendRestError(
          res,
          new TetherError('request.invalid', 'The request URL is not valid.'),
        );
      }
      if (path === `${REST_PREFIX}/openapi.json`) {
        return sendJsonText(res, 200, openApiJson, { 'cache-control': 'no-cache' });
      }
      if (path === EVENTS_PATH) {
        void eventStream(req, res, url);
        return;
      }
      const declared = Number(req.headers['content-length'] ?? 0);
      if (Number.isFinite(declared) && declared > options.maxBodyBytes) return restTooLarge(res);
      void rest(req, res, url);
      return;
    }
    if (path === DOCS_PATH || path.startsWith(`${DOCS_PATH}/`)) return docs(req, res, path);
    if (path === '/' && prefersJson(req)) {
      return sendJson(res, 200, {
        name: 'tether',
        serverVersion: deps.settings.serverVersion,
        api: '/trpc',
        rest: REST_PREFIX,
        openapi: `${REST_PREFIX}/openapi.json`,
        docs: DOCS_PATH,
        health: ['/livez', '/readyz'],
        ...(options.metrics.onMainPort ? { metrics: '/metrics' } : {}),
        dashboard: '/',
      });
    }
    if (isDashboardPath(path)) return dashboard(req, res, path);
    return sendJson(res, 404, { error: 'not found' });
  };
  return {
    handle,
    idle: () =>
      httpInFlight === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => httpIdleWaiters.push(resolve)),
  };
}
