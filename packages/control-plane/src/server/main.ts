/**
 * Wires everything: PostgreSQL (external or embedded), migrations under their advisory lock,
 * the bootstrap admin (or, with none, a first admin whose token goes to a file), services, the feed hub and the replica's LISTEN connection, the host,
 * the maintenance loop (sweep, retention) and graceful shutdown.
 * Shutdown order: readiness fails → WS clients told to reconnect → no new connections →
 * subscriptions end → nothing more read from WebSockets, buffered beats written → nodes still
 * bound here go offline (batched statements) → in-flight HTTP calls drain → LISTEN and pool
 * closed → embedded PostgreSQL stopped → sockets terminated.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { LiveCredentials } from '../auth/live-credentials.js';
import { ensureBootstrapAdmin } from '../auth/participant-tokens.js';
import { AuthService } from '../auth/service.js';
import { RevocationBus } from '../auth/revocations.js';
import { runMigrations } from '../db/migrate.js';
import { createDb, poolStats, type Db } from '../db/pool.js';
import { CommandSignals } from '../commands/signals.js';
import { FeedHub } from '../events/hub.js';
import { HeartbeatBatcher } from '../runtime-nodes/heartbeat-batch.js';
import type { Deps } from '../trpc/context.js';
import { describeConfig, type Config } from './config.js';
import { openDatabase } from './database.js';
import { AdmissionController, startAdmissionSampler } from './admission.js';
import { Cors } from './cors.js';
import { DEFAULT_DASHBOARD_DIR, loadDashboard } from './dashboard.js';
import { createHost, type Host } from './host.js';
import { createLogger } from './logger.js';
import { createMetrics, type WsSessionCounts } from '../observability/metrics.js';
import { createMetricsServer, metricsExposure } from './metrics-http.js';
import { joinCluster, type Cluster } from './cluster.js';
import { PresenceBindings } from './presence-bindings.js';
import { createRateLimiter } from '../limits/rate-limit.js';
import { waitForDatabase } from './startup.js';
import { Sweeper } from './sweeper.js';
import { createFirstAdmin, firstAdminMessage, type FirstAdmin } from './first-admin.js';

export const SERVER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

export interface RunningTether {
  url: string;
  wsUrl: string;
  port: number;
  /** The metrics-only listener's base URL (`TETHER_METRICS_LISTEN`), or null. */
  metricsUrl: string | null;
  db: Db;
  host: Host;
  deps: Deps;
  sweeper: Sweeper;
  cluster: Cluster;
  presence: PresenceBindings;
  /** WebSocket admission (its state: `snapshot()`). */
  admission: AdmissionController;
  /** Graceful stop; resolves when everything is closed. Idempotent. */
  stop(): Promise<void>;
}

/** How to reach a listen address from this machine (a wildcard bind is reached on loopback). */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

export interface StartOptions {
  logger?: Logger;
  /**
   * With no TETHER_BOOTSTRAP_TOKEN and no active admin, create the admin `admin` and write its
   * token to `<data dir>/first-admin-token` (default true; in-process test servers opt out).
   */
  firstAdmin?: boolean;
}

export async function startTether(
  config: Config,
  options: StartOptions = {},
): Promise<RunningTether> {
  const log = options.logger ?? createLogger(config.logLevel);
  log.info({ config: describeConfig(config), serverVersion: SERVER_VERSION }, 'configuration');

  const opened = await openDatabase(config, {
    starting: (detail) => log.info(detail, 'starting embedded PostgreSQL'),
    ready: (detail) => log.info(detail, 'embedded PostgreSQL ready'),
    notice: (message, detail) => log.warn(detail, message),
  });
  const databaseUrl = opened.url;
  let db: Db | undefined;
  let firstAdmin: FirstAdmin | null = null;
  try {
    // A database that is not up yet (deployments start both at once) is waited for, bounded.
    await waitForDatabase(databaseUrl, {
      timeoutMs: config.dbConnectTimeoutMs,
      variable: config.databaseUrl ? 'DATABASE_URL' : 'TETHER_DATA_DIR',
      log,
    });
    const migrated = await runMigrations(databaseUrl);
    if (migrated.applied.length > 0) log.info({ applied: migrated.applied }, 'migrations applied');
    db = createDb({
      connectionString: databaseUrl,
      max: config.dbPoolMax,
      applicationName: 'tether-server',
      // The safety poll still finds the events: a lost notification only delays them.
      onNotifyError: (err) => log.warn({ err }, 'could not announce new fleet events'),
    });
    if (config.bootstrapToken) {
      const admin = await ensureBootstrapAdmin(db, config.bootstrapToken);
      log.info(
        { participantId: admin.participantId, created: admin.created },
        'bootstrap admin ensured',
      );
    }
    if (!config.bootstrapToken && options.firstAdmin !== false) {
      firstAdmin = await createFirstAdmin(db, config.dataDir, log);
    }
  } catch (error) {
    await db?.close();
    await opened.close();
    throw error;
  }
  const database = db;

  const revocations = new RevocationBus();
  const feed = new FeedHub(database, {
    onError: (err) => log.warn({ err }, 'fleet feed read failed; retrying on the next signal'),
    onDispatch: (events, deliveries) => {
      metrics.feedEvents.inc(events);
      metrics.feedDeliveries.inc(deliveries);
    },
    onNotifyServed: (ms) => metrics.feedDeliverySeconds.observe(ms / 1000),
  });
  // The host is created below; sessions are counted only once it exists.
  const sessions: { count?: () => WsSessionCounts } = {};
  // WebSocket admission follows the loop delay and the pool's waiters (admission.ts).
  const admission = new AdmissionController({
    maxHandshakes: config.wsMaxHandshakes,
    ratePerSecond: config.wsAdmitPerSecond,
  });
  const stopAdmissionSampler = startAdmissionSampler(admission, {
    poolWaiting: () => poolStats(database).waiting,
  });
  const metrics = createMetrics(database, {
    feedSubscribers: () => feed.subscriberCount,
    feedCursor: () => feed.cursor,
    feedPaused: () => feed.paused,
    wsSessions: () => sessions.count?.() ?? { node: 0, participant: 0, unauthenticated: 0 },
    fleetRefreshMs: config.metricsFleetRefreshMs,
    admission: () => admission.snapshot(),
  });
  // Command streams wake on command events, whichever replica wrote them (commands/signals.ts).
  const commandSignals = new CommandSignals();
  feed.tap(commandSignals);
  let cluster: Cluster;
  try {
    await feed.start();
    cluster = await joinCluster({
      databaseUrl,
      db: database,
      feed,
      revocations,
      log,
      feedPollMs: config.feedPollMs,
    });
  } catch (error) {
    stopAdmissionSampler();
    await database.close();
    await opened.close();
    throw error;
  }
  const metricsHistory = {
    sampleIntervalMs: config.metricsSampleIntervalMs,
    samples: config.metricsHistorySamples,
  };
  const auth = new AuthService(database, { cacheTtlMs: config.authCacheTtlMs, revocations });
  const presence = new PresenceBindings(database, log);
  const deps: Deps = {
    db: database,
    auth,
    revocations,
    // Subscribed after the auth cache, so a revoked credential is forgotten before holds end.
    credentials: new LiveCredentials(auth, revocations),
    feed,
    commands: commandSignals,
    heartbeats: new HeartbeatBatcher(database, {
      maxPending: config.heartbeatQueueMax,
      lingerMs: config.heartbeatLingerMs,
      onBatch: (size, ms) => {
        metrics.heartbeatBatchSize.observe(size);
        metrics.heartbeatBatchSeconds.observe(ms / 1000);
      },
      metricsHistory,
    }),
    limits: createRateLimiter(database, {
      publicPerMinute: config.ratePublicPerMinute,
      authFailuresPerMinute: config.rateAuthFailuresPerMinute,
      heartbeatsPerMinute: config.rateHeartbeatsPerMinute,
      mutationsPerMinute: config.rateMutationsPerMinute,
    }),
    metrics,
    settings: {
      serverVersion: SERVER_VERSION,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      degradedAfterMs: config.degradedAfterMs,
      offlineAfterMs: config.offlineAfterMs,
      sweepIntervalMs: config.sweepIntervalMs,
      pairingTtlSeconds: config.pairingTtlSeconds,
      metricsHistory,
      memberNodeIds: config.memberNodeIds,
    },
    log,
    lifecycle: { draining: false },
    nodeConnections: presence,
  };

  const exposure = metricsExposure({
    host: config.host,
    token: config.metricsToken,
    listen: config.metricsListen,
  });
  for (const warning of exposure.warnings) log.warn(warning);

  const dashboard = loadDashboard(config.dashboardDir ?? DEFAULT_DASHBOARD_DIR);
  if (dashboard.missing !== null) {
    log.warn(
      { dir: dashboard.dir },
      `${dashboard.missing}; the API works, / answers a page saying so. Build it with \`pnpm --filter @tether/dashboard build\` (\`pnpm start\` does).`,
    );
  }
  const host = createHost(deps, presence, {
    dashboard,
    cors: new Cors(config.corsOrigins),
    maxBodyBytes: config.maxBodyBytes,
    maxWsPayloadBytes: config.maxWsPayloadBytes,
    wsPingMs: config.wsPingMs,
    wsPongWaitMs: config.wsPongWaitMs,
    sseKeepAliveMs: config.sseKeepAliveMs,
    trustProxy: config.trustProxy,
    revalidateEveryMs: config.authCacheTtlMs,
    admission,
    metrics: exposure,
    maxBatchCalls: config.maxBatchCalls,
    ws: {
      maxInFlight: config.wsMaxInFlight,
      authDeadlineMs: config.wsAuthDeadlineMs,
      anonymousIdleMs: config.wsAnonymousIdleMs,
      maxUnauthenticatedPerPeer: config.wsMaxUnauthenticatedPerPeer,
    },
  });

  sessions.count = () => host.sessionCounts();

  const sweeper = new Sweeper(database, log, metrics, {
    sweepIntervalMs: config.sweepIntervalMs,
    degradedAfterMs: config.degradedAfterMs,
    offlineAfterMs: config.offlineAfterMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    retention: {
      retainMs: config.eventsRetentionMs,
      retainCount: config.eventsRetentionMinEvents,
      batchSize: 10_000,
    },
    pruneIntervalMs: config.eventsPruneIntervalMs,
  });
  sweeper.start();

  await new Promise<void>((resolve, reject) => {
    host.server.once('error', reject);
    // A reconnect wave brings thousands of connections within a second; with Node's default
    // backlog (511) the kernel drops the SYNs past it and clients retry them 1, 3, 7 s later.
    host.server.listen(
      { port: config.port, host: config.host, backlog: config.listenBacklog },
      () => {
        host.server.off('error', reject);
        resolve();
      },
    );
  });
  const metricsServer = config.metricsListen
    ? createMetricsServer(metrics.registry, config.metricsToken)
    : null;
  if (metricsServer && config.metricsListen) {
    const { host: metricsHost, port: metricsPort } = config.metricsListen;
    try {
      await new Promise<void>((resolve, reject) => {
        metricsServer.once('error', reject);
        metricsServer.listen({ port: metricsPort, host: metricsHost }, () => {
          metricsServer.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      // The address is taken or not ours: nothing keeps running.
      stopAdmissionSampler();
      await sweeper.stop();
      host.server.close();
      host.closeWebSockets();
      await feed.close();
      await cluster.close();
      await database.close();
      await opened.close();
      throw error;
    }
  }
  host.setReady(true);
  const port = (host.server.address() as AddressInfo).port;
  const url = `http://${urlHost(config.host)}:${port}`;
  const metricsUrl =
    metricsServer && config.metricsListen
      ? `http://${urlHost(config.metricsListen.host)}:${(metricsServer.address() as AddressInfo).port}`
      : null;
  if (firstAdmin) {
    log.info(
      { participantId: firstAdmin.participantId, tokenFile: firstAdmin.tokenFile },
      firstAdminMessage(firstAdmin, url),
    );
  }
  log.info({ url, trpc: `${url}/trpc`, metrics: metricsUrl ?? undefined }, 'tether listening');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info('shutting down: draining');
      // How long each phase took, logged at the end: a slow stop says where it spent its time.
      const phases: Record<string, number> = {};
      let mark = Date.now();
      const phase = (name: string): void => {
        const now = Date.now();
        phases[name] = now - mark;
        mark = now;
      };
      host.setDraining();
      await sweeper.stop();
      host.broadcastReconnect();
      await feed.close();
      commandSignals.close();
      phase('notifyMs');
      host.server.close();
      host.server.closeIdleConnections();
      // Clients got the reconnect notification: nothing more is read from their sockets (calls
      // already read finish; a tRPC client re-sends unanswered ones on its next connection), and
      // their closing handshakes are left to the kernel instead of being processed one by one.
      host.pauseWebSockets();
      await deps.heartbeats.drain();
      phase('pauseMs');
      const stillBound = presence.size;
      await presence.releaseAll();
      phase('releaseMs');
      // In-flight HTTP calls finish (bounded by the shutdown timeout).
      let timedOut = false;
      const deadline = new Promise<void>((resolve) =>
        setTimeout(() => {
          timedOut = true;
          resolve();
        }, config.shutdownTimeoutMs).unref(),
      );
      await Promise.race([host.httpIdle(), deadline]);
      phase('httpDrainMs');
      // Again: HTTP beats that arrived while the HTTP calls drained.
      await deps.heartbeats.drain();
      await cluster.close();
      await database.close();
      await opened.close();
      phase('closeMs');
      // Last, without waiting for their close events: the process exits next (an embedding
      // caller's event loop processes them later, with presence already released).
      host.closeWebSockets();
      host.server.closeAllConnections();
      stopAdmissionSampler();
      deps.credentials.close();
      metricsServer?.close();
      metricsServer?.closeAllConnections();
      log.info({ ...phases, stillBound, httpDrainTimedOut: timedOut }, 'shutdown complete');
    })();
    return stopping;
  };

  return {
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/trpc`,
    port,
    metricsUrl,
    db: database,
    host,
    deps,
    sweeper,
    cluster,
    presence,
    admission,
    stop,
  };
}
