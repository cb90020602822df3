/**
 * The WebSocket side of the host: the upgrade path (draining, admission, unauthenticated sockets
 * per address, a credential in the request decided before the 101 answer), the per-socket guard
 * and heartbeat fast path, tRPC's handler per connection, presence bound to a node's socket, and
 * one log line when a socket opens and one when it closes.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import {
  CLIENT_VERSION_HEADER,
  HANDSHAKE_HEADER,
  RESUME_HEADER,
  TetherError,
  encodeHeaderJson,
} from '@tether/contracts';
import { getWSConnectionHandler, type WSSHandlerOptions } from '@trpc/server/adapters/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { bearerToken, buildContext, type Deps } from '../trpc/context.js';
import { actorOf } from '../trpc/audit.js';
import { rootConfig } from '../trpc/init.js';
import { appRouter } from '../trpc/root.js';
import type { Handshake } from './admission.js';
import type { ConnectionRegistry } from './connections.js';
import type { HostOptions } from './host.js';
import type { PresenceBindings } from './presence-bindings.js';
import {
  batchTooLarge,
  errorShape,
  headerValue,
  peerAddress,
  refusalBody,
  stringParam,
  type HostState,
} from './transport-shared.js';
import { UpgradeHandshakes, type UpgradeOutcome } from './upgrade-handshake.js';
import { WsGuard } from './ws-guard.js';
import { WsHeartbeatFastPath } from './ws-heartbeat.js';
import { KeepAlive } from './ws-keepalive.js';

/** The wait handed to an upgrade that arrives while the server drains: 1–3 s, spread. */
export const DRAINING_RETRY_MIN_MS = 1_000;
export const DRAINING_RETRY_SPREAD_MS = 2_000;

/**
 * The answer to an upgrade refused before it becomes a WebSocket (admission limit, unauthenticated
 * sockets per address, a refused credential): the status, `Retry-After` (whole seconds, as HTTP
 * wants) and the JSON body `{ error }` with the typed error as the formatter shapes it, the exact
 * wait in `retryAfterMs`. Plain JSON, not the transformer's: this is an HTTP answer before any tRPC
 * exchange, read by clients that have no tRPC link yet (the SDK takes `retryAfterMs` from it).
 */
function upgradeRefusal(statusLine: string, body: string, retryAfterMs?: number): string {
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

/** The refusals a flood repeats thousands of times, formatted once (transport-shared.ts). */
const STOPPING = refusalBody(
  'system.unavailable',
  'The server is stopping; retry after retryAfterMs.',
);
const ADMISSION_FULL = refusalBody(
  'system.unavailable',
  'The server is admitting new connections as fast as it can take them; retry after retryAfterMs.',
);
const PEER_FULL = refusalBody(
  'rate_limited',
  'Too many unauthenticated WebSockets from this address; authenticate the open ones or retry after retryAfterMs.',
);

/**
 * The wait suggested to a call refused for the connection's in-flight limit: a slot frees when
 * one of its calls is answered, which the server cannot foresee; this is a short hint.
 */
const IN_FLIGHT_RETRY_MS = 100;

/** The WebSocket server and what the host stops or reads of it. */
export interface WebSocketPath {
  wss: WebSocketServer;
  heartbeatFastPath: WsHeartbeatFastPath;
  keepAlive: KeepAlive;
}

/** Serves WebSocket upgrades of `server` at /trpc. */
export function attachWebSockets(
  server: Server,
  deps: Deps,
  presence: PresenceBindings,
  options: HostOptions,
  connections: ConnectionRegistry,
  state: Readonly<HostState>,
): WebSocketPath {
  /** Each socket's connectionId (from its open line on) and who authenticated it. */
  const socketIds = new WeakMap<object, string>();
  const socketPrincipals = new WeakMap<object, Record<string, unknown>>();
  /** Upgrades decided with their credential in the request (upgrade-handshake.ts), by request. */
  const upgraded = new WeakMap<
    IncomingMessage,
    { connectionId: string; outcome: Extract<UpgradeOutcome, { kind: 'accepted' }> }
  >();
  const handshakes = new UpgradeHandshakes(deps);

  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxWsPayloadBytes });
  /** Admitted upgrades not yet served their first context (admission.ts). */
  const inFlight = new WeakMap<IncomingMessage, Handshake>();
  // One timer pings every idle socket with a protocol ping frame (ws-keepalive.ts).
  const keepAlive = new KeepAlive({
    pingMs: options.wsPingMs,
    pongWaitMs: options.wsPongWaitMs,
    onTerminate: () => deps.metrics.wsKeepAliveTerminated.inc(),
  });
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
    if (!(path === '/trpc' || path === '/trpc/')) {
      refuse('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (state.draining) {
      // Stopping (a restart, most often): come back in 1–3 s, spread, rather than back off on a
      // bare 503 that says nothing.
      const retryAfterMs =
        DRAINING_RETRY_MIN_MS + Math.floor(Math.random() * DRAINING_RETRY_SPREAD_MS);
      refuse(upgradeRefusal('503 Service Unavailable', STOPPING(retryAfterMs), retryAfterMs));
      return;
    }
    const admission = options.admission.admit();
    if (!admission.admitted) {
      deps.metrics.wsAdmissionRefused.inc();
      const { retryAfterMs } = admission;
      refuse(upgradeRefusal('503 Service Unavailable', ADMISSION_FULL(retryAfterMs), retryAfterMs));
      return;
    }
    const peerWait = guard.admit(peerAddress(req, options.trustProxy));
    if (peerWait > 0) {
      refuse(upgradeRefusal('429 Too Many Requests', PEER_FULL(peerWait), peerWait));
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
          const body = JSON.stringify({ error: errorShape(outcome.error) });
          refuse(upgradeRefusal(outcome.statusLine, body, outcome.retryAfterMs));
          return;
        }
        const gone = socket.destroyed || !socket.writable;
        if (gone || state.draining) {
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
    // Two lines per socket: the bindings go with each, no child logger is kept per socket.
    const ids = { connectionId, transport: 'ws' };
    deps.log.info({ ...ids, peer: peerAddress(req, options.trustProxy) }, 'websocket opened');
    socket.once('close', (code: number, reason: Buffer) => {
      deps.metrics.wsConnections.dec();
      deps.log.info(
        {
          ...ids,
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

  return { wss, heartbeatFastPath, keepAlive };
}
