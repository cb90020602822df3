/**
 * One port, one HTTP server: tRPC over HTTP at /trpc, tRPC over WebSocket at /trpc (upgrade),
 * plain-JSON REST at /api/v1 (+ /api/v1/openapi.json, the /api/v1/events SSE stream and the
 * /api/docs reference page), /livez, /readyz, /metrics (unless it has a listener of its own or
 * is not exposed: see metrics-http.ts). Transport concerns only; every call goes through the
 * router.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  CLIENT_VERSION_HEADER,
  ERROR_REGISTRY,
  HANDSHAKE_HEADER,
  RESUME_HEADER,
  TetherError,
  encodeHeaderJson,
} from '@tether/contracts';
import { transformTRPCResponse } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { getWSConnectionHandler, type WSSHandlerOptions } from '@trpc/server/adapters/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { bearerToken, buildContext, type Context, type Deps } from '../trpc/context.js';
import { formatError, TRPCError } from '../trpc/error-formatter.js';
import { actorOf } from '../trpc/audit.js';
import { rootConfig } from '../trpc/init.js';
import { appRouter } from '../trpc/root.js';
import type { AdmissionController, Handshake } from './admission.js';
import { ConnectionRegistry } from './connections.js';
import type { Cors } from './cors.js';
import { createDashboardHandler, isDashboardPath, type DashboardFiles } from './dashboard.js';
import { isPlainHeartbeat, serveHttpHeartbeat } from './http-heartbeat.js';
import { sendJson } from './http-json.js';
import { serveMetrics, type MetricsExposure } from './metrics-http.js';
import type { PresenceBindings } from './presence-bindings.js';
import { createDocsHandler, DOCS_PATH } from './rest/docs.js';
import { createEventStreamHandler, EVENTS_PATH } from './rest/events.js';
import { createRestHandler, REST_PREFIX, sendRestError, TOO_LARGE } from './rest/handler.js';
import { buildOpenApiDocument } from './rest/openapi.js';
import { RestRoutes } from './rest/routes.js';
import { createRequestLogger, requestIdOf } from './request-log.js';
import { UpgradeHandshakes, type UpgradeOutcome } from './upgrade-handshake.js';
import { WsGuard } from './ws-guard.js';
import { WsHeartbeatFastPath } from './ws-heartbeat.js';
import { KeepAlive } from './ws-keepalive.js';

export interface HostOptions {
  maxBodyBytes: number;
  maxWsPayloadBytes: number;
  wsPingMs: number;
  wsPongWaitMs: number;
  /** Keep-alive comment interval of `GET /api/v1/events` streams. */
  sseKeepAliveMs: number;
  trustProxy: boolean;
  revalidateEveryMs: number;
  /**
   * New WebSocket sessions beyond what the server can take now are told when to come back
   * (admission.ts); an admitted upgrade is a handshake in flight until its first context.
   */
  admission: AdmissionController;
  /** Whether /metrics is served on this port, and behind which token (metrics-http.ts). */
  metrics: MetricsExposure;
  /** Calls in one HTTP `?batch=1` request or one WebSocket frame. */
  maxBatchCalls: number;
  /** Per-socket and per-peer WebSocket limits (ws-guard.ts). */
  ws: {
    maxInFlight: number;
    authDeadlineMs: number;
    anonymousIdleMs: number;
    maxUnauthenticatedPerPeer: number;
  };
  /** The built web dashboard served at `/` (dashboard.ts). */
  dashboard: DashboardFiles;
  /** Origins allowed to call /trpc and /api/v1 from a browser (cors.ts). */
  cors: Cors;
}

export interface Host {
  server: Server;
  connections: ConnectionRegistry;
  heartbeatFastPath: WsHeartbeatFastPath;
  /** Tells every WebSocket client to reconnect (tRPC reconnect notification). */
  broadcastReconnect(): void;
  setDraining(): void;
  isDraining(): boolean;
  setReady(ready: boolean): void;
  /**
   * Stops reading from every WebSocket (shutdown, after the reconnect notification): no new
   * call is taken, and the clients' closing handshakes are not processed one by one — for a
   * large fleet that alone kept a stopping server busy for seconds (docs/performance.md). Credential revalidation stops
   * too (it would query a pool that closes next).
   */
  pauseWebSockets(): void;
  /** Resolves once no HTTP request is in flight (SSE streams included). */
  httpIdle(): Promise<void>;
  /** Stops timers and the WebSocket server (sockets are terminated). */
  closeWebSockets(): void;
  /** Open WebSockets by kind; `unauthenticated` = without a principal (or not yet known). */
  sessionCounts(): { node: number; participant: number; unauthenticated: number };
}

function peerAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

function headerValue(value: string | string[] | undefined, max = 128): string | null {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined ? null : v.slice(0, max);
}

function stringParam(
  params: Record<string, string | undefined> | null | undefined,
  key: string,
  max: number,
): string | null {
  const value = params?.[key];
  return typeof value === 'string' ? value.slice(0, max) : null;
}

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

/** A refused call's error as the error formatter shapes it. */
function errorShape(error: TetherError, path?: string): ReturnType<typeof formatError> {
  return formatError({
    error: new TRPCError({ code: ERROR_REGISTRY[error.code].trpcCode, cause: error }),
    path,
  });
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

function batchTooLarge(calls: number, maxCalls: number): TetherError {
  return new TetherError(
    'request.batch_too_large',
    `The batch carries ${calls} calls; at most ${maxCalls} are accepted at once.`,
    { calls, maxCalls },
  );
}

/**
 * The answer to an upgrade refused before it becomes a WebSocket (admission limit, unauthenticated
 * sockets per address): the status, `Retry-After` (whole seconds, as HTTP wants) and the typed
 * error as the formatter shapes it, with the exact wait in `retryAfterMs`.
 */
function upgradeRefusal(statusLine: string, error: TetherError, retryAfterMs?: number): string {
  // Plain JSON, not the transformer's: this is an HTTP answer before any tRPC exchange, read by
  // clients that have no tRPC link yet (the SDK takes `retryAfterMs` from it).
  const body = JSON.stringify({ error: errorShape(error) });
  return [
    `HTTP/1.1 ${statusLine}`,
    ...(retryAfterMs ? [`Retry-After: ${Math.max(1, Math.ceil(retryAfterMs / 1_000))}`] : []),
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

/**
 * The wait suggested to a call refused for the connection's in-flight limit: a slot frees when
 * one of its calls is answered, which the server cannot foresee; this is a short hint.
 */
const IN_FLIGHT_RETRY_MS = 100;

export function createHost(deps: Deps, presence: PresenceBindings, options: HostOptions): Host {
  let draining = false;
  let ready = false;
  const connections = new ConnectionRegistry();
  /** Each socket's connectionId (from its open line on) and who authenticated it. */
  const socketIds = new WeakMap<object, string>();
  const socketPrincipals = new WeakMap<object, Record<string, unknown>>();
  /** Upgrades decided with their credential in the request (upgrade-handshake.ts), by request. */
  const upgraded = new WeakMap<
    IncomingMessage,
    { connectionId: string; outcome: Extract<UpgradeOutcome, { kind: 'accepted' }> }
  >();
  const handshakes = new UpgradeHandshakes(deps);

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
  const server = createServer((req, res) => {
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
      if (draining || !ready)
        return sendJson(res, 503, { status: draining ? 'draining' : 'starting' });
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
      if (draining) res.setHeader('connection', 'close');
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
      if (draining) res.setHeader('connection', 'close');
      const url = requestUrl(req);
      if (url === null) {
        return sendRestError(
          res,
          new TetherError('request.invalid', 'The request URL is not valid.'),
        );
      }
      if (path === `${REST_PREFIX}/openapi.json`) {
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(openApiJson),
          'cache-control': 'no-cache',
        });
        res.end(openApiJson);
        return;
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
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxWsPayloadBytes });
  /** Admitted upgrades not yet served their first context (admission.ts). */
  const inFlight = new WeakMap<IncomingMessage, Handshake>();
  // One timer pings every idle socket with a protocol ping frame (ws-keepalive.ts).
  const keepAlive = new KeepAlive({ pingMs: options.wsPingMs, pongWaitMs: options.wsPongWaitMs });
  keepAlive.start();
  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    // Once handed over for an upgrade, the socket is ours alone: nobody else listens for its
    // errors, and a client that resets it while being refused must not take the process down.
    const refuse = (response: string): void => {
      socket.on('error', () => socket.destroy());
      // Closed once the answer is flushed, whatever the client does next.
      socket.end(response, () => socket.destroy());
    };
    if (draining || !(path === '/trpc' || path === '/trpc/')) {
      refuse('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const admission = options.admission.admit();
    if (!admission.admitted) {
      deps.metrics.wsAdmissionRefused.inc();
      const error = new TetherError(
        'system.unavailable',
        'The server is admitting new connections as fast as it can take them; retry after retryAfterMs.',
        { retryAfterMs: admission.retryAfterMs },
      );
      refuse(upgradeRefusal('503 Service Unavailable', error, admission.retryAfterMs));
      return;
    }
    const peerWait = guard.admit(peerAddress(req, options.trustProxy));
    if (peerWait > 0) {
      const error = new TetherError(
        'rate_limited',
        'Too many unauthenticated WebSockets from this address; authenticate the open ones or retry after retryAfterMs.',
        { retryAfterMs: peerWait },
      );
      refuse(upgradeRefusal('429 Too Many Requests', error, peerWait));
      return;
    }
    // In flight from here until the connection's first context is built (createContext), or
    // until the socket closes, whichever comes first.
    const handshake = options.admission.started();
    inFlight.set(req, handshake);
    socket.once('close', handshake.done);
    const token = bearerToken(req.headers.authorization);
    if (token === null) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      return;
    }
    // The credential (and a node's resume claim) came with the request: decided before the
    // upgrade is answered, the answer in the 101 response's headers.
    const connectionId = randomUUID();
    void handshakes
      .check({
        token,
        resume: headerValue(req.headers[RESUME_HEADER], 8192),
        clientContractVersion: headerValue(req.headers[CLIENT_VERSION_HEADER]),
        peer: peerAddress(req, options.trustProxy),
        connectionId,
      })
      .then((outcome) => {
        if (outcome.kind === 'refused') {
          refuse(upgradeRefusal(outcome.statusLine, outcome.error, outcome.retryAfterMs));
          return;
        }
        const gone = socket.destroyed || !socket.writable;
        if (gone || draining) {
          // Bound by the resume for a socket that will never open: released at once.
          if (outcome.bound && outcome.principal.kind === 'node') {
            presence.adopt(outcome.principal.nodeId, connectionId);
            presence.release(connectionId);
          }
          if (!gone) {
            refuse(
              'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
            );
          }
          return;
        }
        upgraded.set(req, { connectionId, outcome });
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      });
  });
  wss.on('headers', (headers, req) => {
    const decided = upgraded.get(req);
    if (decided) headers.push(`${HANDSHAKE_HEADER}: ${encodeHeaderJson(decided.outcome.answer)}`);
  });

  const heartbeatFastPath = new WsHeartbeatFastPath(connections);
  const guard = new WsGuard(
    { maxBatchCalls: options.maxBatchCalls, ...options.ws },
    {
      sendErrors: (socket, calls, error) => {
        if (socket.readyState !== socket.OPEN || calls.length === 0) return;
        // One error, serialised once as tRPC would (transformer), then one frame per id.
        const shape = JSON.stringify(rootConfig.transformer.output.serialize(errorShape(error)));
        for (const { id, jsonrpc } of calls) {
          const head = jsonrpc === undefined ? '' : '"jsonrpc":"2.0",';
          socket.send(`{"id":${JSON.stringify(id)},${head}"error":${shape}}`);
        }
      },
      refusalError: (reason, details) =>
        reason === 'batch'
          ? batchTooLarge(details.calls ?? 0, details.maxCalls ?? options.maxBatchCalls)
          : new TetherError(
              'rate_limited',
              `This connection already has ${options.ws.maxInFlight} calls in flight; retry once one is answered.`,
              { ...details, retryAfterMs: IN_FLIGHT_RETRY_MS },
            ),
      onRefusal: (reason) => deps.metrics.transportRefusals.inc({ reason }),
      onTimeout: (reason) => deps.metrics.wsUnauthenticatedClosed.inc({ reason }),
    },
  );
  const wsOptions: WSSHandlerOptions<typeof appRouter> = {
    wss,
    router: appRouter,
    // Keep-alive is ours (ws-keepalive.ts); tRPC still answers a client's text PING with PONG.
    createContext: async ({ req, res: socket, info }) => {
      guard.paramsReceived(socket);
      const connectionId = socketIds.get(socket) ?? randomUUID();
      // Authenticated at the upgrade (credential in the request): no second lookup.
      const decided = upgraded.get(req)?.outcome;
      const ctx = await buildContext(deps, {
        token: decided ? null : stringParam(info.connectionParams, 'token', 4096),
        ...(decided ? { principal: decided.principal } : {}),
        clientContractVersion: decided
          ? decided.clientContractVersion
          : stringParam(info.connectionParams, 'clientVersion', 128),
        transport: 'ws',
        peer: peerAddress(req, options.trustProxy),
        connectionId,
        // Held for the whole connection; the registry releases it when the socket closes.
        lifetime: { eager: true, onClose: () => undefined },
      });
      // The handshake is over: admission may let the next one in.
      inFlight.get(req)?.done();
      connections.add(socket, {
        principal: ctx.principal,
        connectionId,
        hold: ctx.credential?.hold() ?? null,
      });
      if (ctx.principal) socketPrincipals.set(socket, actorOf(ctx.principal));
      guard.authenticated(socket, ctx.principal !== null);
      heartbeatFastPath.register(socket, ctx);
      if (ctx.principal?.kind === 'node' && socket.readyState === socket.OPEN) {
        // Presence follows this socket from now on (see presence-bindings.ts); a resume in the
        // upgrade already bound it.
        if (decided?.bound) presence.adopt(ctx.principal.nodeId, connectionId);
        else presence.bind(ctx.principal.nodeId, connectionId);
        socket.once('close', () => presence.release(connectionId));
      } else if (decided?.bound && ctx.principal?.kind === 'node') {
        // Resumed for a socket already gone: its binding goes with it.
        presence.adopt(ctx.principal.nodeId, connectionId);
        presence.release(connectionId);
      }
      return ctx;
    },
  };
  const trackSocket = (socket: WebSocket, req: IncomingMessage): void => {
    deps.metrics.wsConnections.inc();
    // One line when a socket opens and one when it closes, under the socket's connectionId
    // (the id of its calls' lines too). Heartbeats on it are not logged one by one.
    const connectionId = upgraded.get(req)?.connectionId ?? randomUUID();
    socketIds.set(socket, connectionId);
    const opened = performance.now();
    const log = deps.log.child({ connectionId, transport: 'ws' });
    log.info({ peer: peerAddress(req, options.trustProxy) }, 'websocket opened');
    socket.once('close', (code: number, reason: Buffer) => {
      deps.metrics.wsConnections.dec();
      log.info(
        {
          code,
          reason: reason.toString('utf8').slice(0, 128),
          durationMs: Math.round(performance.now() - opened),
          actor: socketPrincipals.get(socket) ?? { kind: 'anonymous' },
        },
        'websocket closed',
      );
    });
  };

  // tRPC's handler per connection, so that each socket's decoder can see its own heartbeats
  // first (ws-heartbeat.ts); everything else is served by tRPC as usual.
  wss.on('connection', (socket, req) => {
    trackSocket(socket, req);
    keepAlive.watch(socket);
    // As tRPC decides whether to wait for a connectionParams message.
    const awaitsParams =
      new URL(req.url ?? '/', 'http://localhost').searchParams.get('connectionParams') === '1';
    guard.open(socket, peerAddress(req, options.trustProxy), awaitsParams);
    getWSConnectionHandler({
      ...wsOptions,
      experimental_encoder: guard.codecFor(socket, (msg) =>
        heartbeatFastPath.tryServe(socket, msg),
      ),
    })(socket, req);
  });

  // Revocations end holds at once (LiveCredentials listens to the bus); this catches expiry and
  // whatever changed in the database without a notification, for sockets and streams alike.
  const revalidateTimer = setInterval(() => {
    deps.credentials
      .revalidate()
      .catch((err: unknown) => deps.log.warn({ err }, 'revalidation failed'));
  }, options.revalidateEveryMs);
  revalidateTimer.unref();

  return {
    server,
    connections,
    heartbeatFastPath,
    broadcastReconnect: () => {
      // tRPC's reconnect notification: clients reconnect (to another replica) right away.
      const frame = JSON.stringify({ id: null, method: 'reconnect' });
      for (const socket of wss.clients) if (socket.readyState === socket.OPEN) socket.send(frame);
    },
    setDraining: () => {
      draining = true;
      deps.lifecycle.draining = true;
    },
    isDraining: () => draining,
    setReady: (value) => {
      ready = value;
    },
    pauseWebSockets: () => {
      // Revalidation queries the database every second: it stops here, before the pool closes.
      clearInterval(revalidateTimer);
      // Paused sockets read no pongs: the keep-alive must not cut them while the server stops.
      keepAlive.stop();
      for (const socket of wss.clients) socket.pause();
    },
    httpIdle: () =>
      httpInFlight === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => httpIdleWaiters.push(resolve)),
    sessionCounts: () => {
      const { node, participant } = connections.countByKind();
      return {
        node,
        participant,
        unauthenticated: Math.max(0, wss.clients.size - node - participant),
      };
    },
    closeWebSockets: () => {
      clearInterval(revalidateTimer);
      keepAlive.stop();
      for (const socket of wss.clients) socket.terminate();
      wss.close();
    },
  };
}
