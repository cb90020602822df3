/**
 * One port, one HTTP server: tRPC over HTTP at /trpc, tRPC over WebSocket at /trpc (upgrade),
 * plain-JSON REST at /api/v1 (+ /api/v1/openapi.json, the /api/v1/events SSE stream and the
 * /api/docs reference page), /livez, /readyz, /metrics (unless it has a listener of its own or
 * is not exposed: see metrics-http.ts). Transport concerns only; every call goes through the
 * router.
 */
import { createServer, type Server } from 'node:http';
import type { Deps } from '../trpc/context.js';
import type { AdmissionController } from './admission.js';
import { ConnectionRegistry } from './connections.js';
import type { Cors } from './cors.js';
import type { DashboardFiles } from './dashboard.js';
import { createHttpRouting } from './http-routes.js';
import type { MetricsExposure } from './metrics-http.js';
import type { PresenceBindings } from './presence-bindings.js';
import type { HostState } from './transport-shared.js';
import type { WsHeartbeatFastPath } from './ws-heartbeat.js';
import { attachWebSockets } from './ws-upgrade.js';

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
export function createHost(deps: Deps, presence: PresenceBindings, options: HostOptions): Host {
  const state: HostState = { draining: false, ready: false };
  const connections = new ConnectionRegistry();
  const http = createHttpRouting(deps, options, state);
  const server = createServer(http.handle);
  const { wss, heartbeatFastPath, keepAlive } = attachWebSockets(
    server,
    deps,
    presence,
    options,
    connections,
    state,
  );

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
      state.draining = true;
      deps.lifecycle.draining = true;
    },
    isDraining: () => state.draining,
    setReady: (value) => {
      state.ready = value;
    },
    pauseWebSockets: () => {
      // Revalidation queries the database every second: it stops here, before the pool closes.
      clearInterval(revalidateTimer);
      // Paused sockets read no pongs: the keep-alive must not cut them while the server stops.
      keepAlive.stop();
      for (const socket of wss.clients) socket.pause();
    },
    httpIdle: () => http.idle(),
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
