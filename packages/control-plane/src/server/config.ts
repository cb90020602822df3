/**
 * All configuration comes from the environment, read and validated here only, with defaults
 * that make `pnpm start` work with nothing set.
 */
import { resolve } from 'node:path';
import { METRICS_HISTORY_MAX } from '@tether/contracts';
import { z } from 'zod';

const ms = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const bytes = (fallback: number) => z.coerce.number().int().min(1024).default(fallback);

/** `host:port`, an IPv6 host in brackets: `10.0.0.5:9464`, `[::1]:9464`, `localhost:0`. */
const LISTEN_PATTERN = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/;

function parseListen(value: string | undefined): { host: string; port: number } | undefined {
  if (value === undefined) return undefined;
  const m = LISTEN_PATTERN.exec(value)!;
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

const EnvSchema = z.object({
  TETHER_PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  TETHER_HOST: z.string().min(1).default('0.0.0.0'),
  TETHER_DATA_DIR: z.string().min(1).default('./.tether'),
  DATABASE_URL: z
    .url({
      protocol: /^postgres(ql)?$/,
      error: 'not a PostgreSQL URL (postgres://user:password@host:5432/database)',
    })
    .optional(),
  TETHER_DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(0).max(86_400_000).default(30_000),
  TETHER_EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  TETHER_BOOTSTRAP_TOKEN: z.string().min(8).max(256).optional(),
  TETHER_HEARTBEAT_INTERVAL_MS: ms(15_000),
  TETHER_DEGRADED_AFTER_MS: ms(30_000),
  TETHER_OFFLINE_AFTER_MS: ms(60_000),
  TETHER_SWEEP_INTERVAL_MS: ms(5_000),
  // Fractions of a millisecond are allowed (down to 1 µs), for tests that sample every beat.
  TETHER_METRICS_SAMPLE_INTERVAL_MS: z.coerce.number().min(0.001).max(86_400_000).default(15_000),
  TETHER_METRICS_HISTORY_SAMPLES: z.coerce
    .number()
    .int()
    .min(1)
    .max(METRICS_HISTORY_MAX)
    .default(240),
  TETHER_EVENTS_RETENTION_HOURS: z.coerce.number().positive().max(87_600).default(24),
  TETHER_EVENTS_RETENTION_MIN_EVENTS: z.coerce.number().int().min(0).default(1_000_000),
  TETHER_EVENTS_PRUNE_INTERVAL_MS: ms(60_000),
  TETHER_FEED_POLL_MS: ms(5_000),
  TETHER_MAX_BODY_BYTES: bytes(1024 * 1024),
  TETHER_MAX_WS_PAYLOAD_BYTES: bytes(1024 * 1024),
  TETHER_WS_PING_MS: ms(3_000),
  TETHER_WS_PONG_WAIT_MS: ms(2_000),
  TETHER_SSE_KEEPALIVE_MS: ms(15_000),
  TETHER_AUTH_CACHE_TTL_MS: ms(1_000),
  TETHER_LISTEN_BACKLOG: z.coerce.number().int().min(1).max(65_535).default(4_096),
  TETHER_WS_ADMIT_PER_SECOND: z.coerce.number().int().min(0).max(1_000_000).default(0),
  TETHER_WS_MAX_HANDSHAKES: z.coerce.number().int().min(0).max(1_000_000).default(0),
  TETHER_DB_POOL_MAX: z.coerce.number().int().min(1).max(200).default(20),
  TETHER_SHUTDOWN_TIMEOUT_MS: ms(8_000),
  TETHER_PAIRING_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(600),
  TETHER_RATE_PUBLIC_PER_MINUTE: z.coerce.number().int().positive().default(30),
  TETHER_RATE_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().positive().default(20),
  TETHER_RATE_HEARTBEATS_PER_MINUTE: z.coerce.number().int().positive().default(60),
  TETHER_RATE_MUTATIONS_PER_MINUTE: z.coerce.number().int().positive().default(600),
  TETHER_MAX_BATCH_CALLS: z.coerce.number().int().min(1).max(10_000).default(50),
  TETHER_WS_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(100_000).default(64),
  TETHER_WS_AUTH_DEADLINE_MS: ms(10_000),
  TETHER_WS_ANONYMOUS_IDLE_MS: ms(30_000),
  TETHER_WS_MAX_UNAUTHENTICATED_PER_PEER: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(256),
  TETHER_TRUST_PROXY: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  TETHER_MEMBER_NODE_IDS: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  TETHER_METRICS_TOKEN: z
    .string()
    .min(16, 'at least 16 characters')
    .max(256)
    .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces (it is sent as a bearer token)')
    .optional(),
  TETHER_METRICS_LISTEN: z
    .string()
    .regex(LISTEN_PATTERN, 'host:port, e.g. 127.0.0.1:9464 or [::1]:9464')
    .optional(),
  TETHER_CORS_ORIGINS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      const origins = v
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o !== '');
      for (const origin of origins) {
        let parsed: URL | null = null;
        try {
          parsed = new URL(origin);
        } catch {
          parsed = null;
        }
        if (parsed === null || parsed.origin !== origin || !/^https?:$/.test(parsed.protocol)) {
          ctx.addIssue({
            code: 'custom',
            message: `"${origin}" is not an origin (scheme://host[:port], no path or trailing slash)`,
          });
        }
      }
      return origins;
    }),
  TETHER_DASHBOARD_DIR: z.string().min(1).optional(),
  TETHER_METRICS_FLEET_REFRESH_MS: ms(15_000),
  TETHER_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info'),
});

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  /** Unset: the embedded PostgreSQL picks a free port and remembers it. */
  embeddedPgPort: number | undefined;
  bootstrapToken: string | undefined;
  heartbeatIntervalMs: number;
  degradedAfterMs: number;
  offlineAfterMs: number;
  sweepIntervalMs: number;
  /** At most one metrics sample per node per this many milliseconds… */
  metricsSampleIntervalMs: number;
  /** …and this many samples kept per node (`node.metrics`). */
  metricsHistorySamples: number;
  /** Fleet events younger than this are kept… */
  eventsRetentionMs: number;
  /** …and so are the newest this many. */
  eventsRetentionMinEvents: number;
  eventsPruneIntervalMs: number;
  feedPollMs: number;
  maxBodyBytes: number;
  maxWsPayloadBytes: number;
  wsPingMs: number;
  wsPongWaitMs: number;
  /** A keep-alive comment line on `GET /api/v1/events` streams every this many ms. */
  sseKeepAliveMs: number;
  authCacheTtlMs: number;
  /** Pending TCP connections the kernel may queue for accept (capped by net.core.somaxconn). */
  listenBacklog: number;
  /** Fixed cap on new WebSocket sessions per second (and per burst); 0 = none (adaptive only). */
  wsAdmitPerSecond: number;
  /** Fixed cap on WebSocket handshakes in flight; 0 = the adaptive limit alone. */
  wsMaxHandshakes: number;
  dbPoolMax: number;
  /** How long the server retries an unreachable database at start before exiting (0: once). */
  dbConnectTimeoutMs: number;
  shutdownTimeoutMs: number;
  pairingTtlSeconds: number;
  ratePublicPerMinute: number;
  rateAuthFailuresPerMinute: number;
  rateHeartbeatsPerMinute: number;
  /** Authenticated mutations per principal (participant or node id), heartbeats excepted. */
  rateMutationsPerMinute: number;
  /** Calls in one HTTP `?batch=1` request or one WebSocket frame. */
  maxBatchCalls: number;
  /** Calls (subscriptions included) one WebSocket may have unanswered at once. */
  wsMaxInFlight: number;
  /** A socket opened with `connectionParams=1` must send them within this time. */
  wsAuthDeadlineMs: number;
  /** A socket without a principal is closed after this long without a call. */
  wsAnonymousIdleMs: number;
  /** Sockets not (yet) authenticated, per peer address; more upgrades are refused. */
  wsMaxUnauthenticatedPerPeer: number;
  trustProxy: boolean;
  /** Members' keys and approvals may name node ids (and so learn which ids exist). */
  memberNodeIds: boolean;
  /** Bearer token required to read /metrics (wherever it is served). */
  metricsToken: string | undefined;
  /** A separate listener for /metrics only; the main port then does not serve it. */
  metricsListen: { host: string; port: number } | undefined;
  /** Browser origins allowed to call /trpc and /api/v1 (CORS); none by default. */
  corsOrigins: string[];
  /** The built dashboard (index.html, assets/); unset: packages/dashboard/dist. */
  dashboardDir: string | undefined;
  /** The fleet gauges on /metrics are read from the database at most this often. */
  metricsFleetRefreshMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export interface ConfigIssue {
  /** The environment variable to fix. */
  variable: string;
  message: string;
}

/** Configuration the server cannot run with; the message is one line naming the variables. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly issues: ConfigIssue[];

  constructor(message: string, issues: ConfigIssue[] = []) {
    super(message);
    this.issues = issues;
  }
}

function invalid(issues: ConfigIssue[]): ConfigError {
  return new ConfigError(
    `Invalid configuration: ${issues.map((i) => `${i.variable}: ${i.message}`).join('; ')}`,
    issues,
  );
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    // Zod's messages name the rule, never the value (which may be a secret).
    throw invalid(
      parsed.error.issues.map((i) => ({ variable: i.path.join('.'), message: i.message })),
    );
  }
  const e = parsed.data;
  if (e.TETHER_DEGRADED_AFTER_MS >= e.TETHER_OFFLINE_AFTER_MS) {
    throw invalid([
      {
        variable: 'TETHER_DEGRADED_AFTER_MS',
        message: 'must be below TETHER_OFFLINE_AFTER_MS',
      },
    ]);
  }
  const metricsListen = parseListen(e.TETHER_METRICS_LISTEN);
  if (metricsListen && metricsListen.port > 65_535) {
    throw invalid([{ variable: 'TETHER_METRICS_LISTEN', message: 'port must be 0–65535' }]);
  }
  return {
    port: e.TETHER_PORT,
    host: e.TETHER_HOST,
    // Relative to where the user ran the command (pnpm runs scripts inside the package directory).
    dataDir: resolve(env.INIT_CWD ?? process.cwd(), e.TETHER_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    embeddedPgPort: e.TETHER_EMBEDDED_PG_PORT,
    bootstrapToken: e.TETHER_BOOTSTRAP_TOKEN,
    heartbeatIntervalMs: e.TETHER_HEARTBEAT_INTERVAL_MS,
    degradedAfterMs: e.TETHER_DEGRADED_AFTER_MS,
    offlineAfterMs: e.TETHER_OFFLINE_AFTER_MS,
    sweepIntervalMs: e.TETHER_SWEEP_INTERVAL_MS,
    metricsSampleIntervalMs: e.TETHER_METRICS_SAMPLE_INTERVAL_MS,
    metricsHistorySamples: e.TETHER_METRICS_HISTORY_SAMPLES,
    eventsRetentionMs: Math.round(e.TETHER_EVENTS_RETENTION_HOURS * 3_600_000),
    eventsRetentionMinEvents: e.TETHER_EVENTS_RETENTION_MIN_EVENTS,
    eventsPruneIntervalMs: e.TETHER_EVENTS_PRUNE_INTERVAL_MS,
    feedPollMs: e.TETHER_FEED_POLL_MS,
    maxBodyBytes: e.TETHER_MAX_BODY_BYTES,
    maxWsPayloadBytes: e.TETHER_MAX_WS_PAYLOAD_BYTES,
    wsPingMs: e.TETHER_WS_PING_MS,
    wsPongWaitMs: e.TETHER_WS_PONG_WAIT_MS,
    sseKeepAliveMs: e.TETHER_SSE_KEEPALIVE_MS,
    authCacheTtlMs: e.TETHER_AUTH_CACHE_TTL_MS,
    wsAdmitPerSecond: e.TETHER_WS_ADMIT_PER_SECOND,
    wsMaxHandshakes: e.TETHER_WS_MAX_HANDSHAKES,
    listenBacklog: e.TETHER_LISTEN_BACKLOG,
    dbPoolMax: e.TETHER_DB_POOL_MAX,
    dbConnectTimeoutMs: e.TETHER_DB_CONNECT_TIMEOUT_MS,
    shutdownTimeoutMs: e.TETHER_SHUTDOWN_TIMEOUT_MS,
    pairingTtlSeconds: e.TETHER_PAIRING_TTL_SECONDS,
    ratePublicPerMinute: e.TETHER_RATE_PUBLIC_PER_MINUTE,
    rateAuthFailuresPerMinute: e.TETHER_RATE_AUTH_FAILURES_PER_MINUTE,
    rateHeartbeatsPerMinute: e.TETHER_RATE_HEARTBEATS_PER_MINUTE,
    rateMutationsPerMinute: e.TETHER_RATE_MUTATIONS_PER_MINUTE,
    maxBatchCalls: e.TETHER_MAX_BATCH_CALLS,
    wsMaxInFlight: e.TETHER_WS_MAX_IN_FLIGHT,
    wsAuthDeadlineMs: e.TETHER_WS_AUTH_DEADLINE_MS,
    wsAnonymousIdleMs: e.TETHER_WS_ANONYMOUS_IDLE_MS,
    wsMaxUnauthenticatedPerPeer: e.TETHER_WS_MAX_UNAUTHENTICATED_PER_PEER,
    trustProxy: e.TETHER_TRUST_PROXY,
    memberNodeIds: e.TETHER_MEMBER_NODE_IDS,
    metricsToken: e.TETHER_METRICS_TOKEN,
    metricsListen,
    corsOrigins: e.TETHER_CORS_ORIGINS,
    dashboardDir:
      e.TETHER_DASHBOARD_DIR === undefined
        ? undefined
        : resolve(env.INIT_CWD ?? process.cwd(), e.TETHER_DASHBOARD_DIR),
    metricsFleetRefreshMs: e.TETHER_METRICS_FLEET_REFRESH_MS,
    logLevel: e.TETHER_LOG_LEVEL,
  };
}

/** Redacts secrets (token, database password) for printing at start. */
export function describeConfig(config: Config): Record<string, unknown> {
  let database = 'embedded';
  if (config.databaseUrl) {
    const url = new URL(config.databaseUrl);
    if (url.password) url.password = '***';
    database = url.toString();
  }
  return {
    ...config,
    databaseUrl: database,
    // Unset secrets are shown as null (never as a redaction of something that is not there).
    bootstrapToken: config.bootstrapToken ? '***' : null,
    metricsToken: config.metricsToken ? '***' : null,
  };
}
