/**
 * All configuration comes from the environment, read and validated here only, with defaults
 * that make `pnpm start` work with nothing set.
 */
import { resolve } from 'node:path';
import { METRICS_HISTORY_MAX } from '@tether/contracts';
import { z } from 'zod';
import { DEFAULT_LINGER_MS } from '../runtime-nodes/heartbeat-batch.js';

const ms = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const bytes = (fallback: number) => z.coerce.number().int().min(1024).default(fallback);

/** `host:port`, an IPv6 host in brackets: `10.0.0.5:9464`, `[::1]:9464`, `localhost:0`. */
const LISTEN_PATTERN = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/;

function parseListen(value: string): { host: string; port: number } {
  const m = LISTEN_PATTERN.exec(value)!;
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/** One setting: the environment variable it is read from and how (validated, defaulted, shaped). */
function fromEnv<S extends z.ZodType>(
  variable: string,
  schema: S,
): { variable: string; schema: S } {
  return { variable, schema };
}

const flag = () =>
  z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((v) => v === 'true' || v === '1');

/**
 * Every setting, written once: the `Config` key, its variable and its schema. The order is the
 * order in which invalid variables are reported.
 */
const SETTINGS = {
  port: fromEnv('TETHER_PORT', z.coerce.number().int().min(0).max(65535).default(4000)),
  host: fromEnv('TETHER_HOST', z.string().min(1).default('0.0.0.0')),
  /** Relative to where the user ran the command (resolved by `loadConfig`). */
  dataDir: fromEnv('TETHER_DATA_DIR', z.string().min(1).default('./.tether')),
  databaseUrl: fromEnv(
    'DATABASE_URL',
    z
      .url({
        protocol: /^postgres(ql)?$/,
        error: 'not a PostgreSQL URL (postgres://user:password@host:5432/database)',
      })
      .optional(),
  ),
  /** How long the server retries an unreachable database at start before exiting (0: once). */
  dbConnectTimeoutMs: fromEnv(
    'TETHER_DB_CONNECT_TIMEOUT_MS',
    z.coerce.number().int().min(0).max(86_400_000).default(30_000),
  ),
  /** Unset: the embedded PostgreSQL picks a free port and remembers it. */
  embeddedPgPort: fromEnv(
    'TETHER_EMBEDDED_PG_PORT',
    z.coerce.number().int().min(1).max(65535).optional(),
  ),
  bootstrapToken: fromEnv('TETHER_BOOTSTRAP_TOKEN', z.string().min(8).max(256).optional()),
  heartbeatIntervalMs: fromEnv('TETHER_HEARTBEAT_INTERVAL_MS', ms(15_000)),
  degradedAfterMs: fromEnv('TETHER_DEGRADED_AFTER_MS', ms(30_000)),
  offlineAfterMs: fromEnv('TETHER_OFFLINE_AFTER_MS', ms(60_000)),
  sweepIntervalMs: fromEnv('TETHER_SWEEP_INTERVAL_MS', ms(5_000)),
  /**
   * At most one metrics sample per node per this many milliseconds. Fractions of a millisecond
   * are allowed (down to 1 µs), for tests that sample every beat.
   */
  metricsSampleIntervalMs: fromEnv(
    'TETHER_METRICS_SAMPLE_INTERVAL_MS',
    z.coerce.number().min(0.001).max(86_400_000).default(15_000),
  ),
  /** Samples kept per node (`node.metrics`). */
  metricsHistorySamples: fromEnv(
    'TETHER_METRICS_HISTORY_SAMPLES',
    z.coerce.number().int().min(1).max(METRICS_HISTORY_MAX).default(240),
  ),
  /** Beats waiting for a batch write; beyond it a beat is refused (`system.unavailable`). */
  heartbeatQueueMax: fromEnv(
    'TETHER_HEARTBEAT_QUEUE_MAX',
    z.coerce.number().int().min(1).max(1_000_000).default(20_000),
  ),
  /** A heartbeat batch starts at most this often (ms) under a steady stream; 0: at once. */
  heartbeatLingerMs: fromEnv(
    'TETHER_HEARTBEAT_LINGER_MS',
    z.coerce.number().min(0).max(100).default(DEFAULT_LINGER_MS),
  ),
  /** Fleet events younger than this are kept (set in hours, held in milliseconds)… */
  eventsRetentionMs: fromEnv(
    'TETHER_EVENTS_RETENTION_HOURS',
    z.coerce
      .number()
      .positive()
      .max(87_600)
      .default(24)
      .transform((hours) => Math.round(hours * 3_600_000)),
  ),
  /** …and so are the newest this many. */
  eventsRetentionMinEvents: fromEnv(
    'TETHER_EVENTS_RETENTION_MIN_EVENTS',
    z.coerce.number().int().min(0).default(1_000_000),
  ),
  eventsPruneIntervalMs: fromEnv('TETHER_EVENTS_PRUNE_INTERVAL_MS', ms(60_000)),
  feedPollMs: fromEnv('TETHER_FEED_POLL_MS', ms(5_000)),
  maxBodyBytes: fromEnv('TETHER_MAX_BODY_BYTES', bytes(1024 * 1024)),
  maxWsPayloadBytes: fromEnv('TETHER_MAX_WS_PAYLOAD_BYTES', bytes(1024 * 1024)),
  wsPingMs: fromEnv('TETHER_WS_PING_MS', ms(3_000)),
  wsPongWaitMs: fromEnv('TETHER_WS_PONG_WAIT_MS', ms(2_000)),
  /** A keep-alive comment line on `GET /api/v1/events` streams every this many ms. */
  sseKeepAliveMs: fromEnv('TETHER_SSE_KEEPALIVE_MS', ms(15_000)),
  authCacheTtlMs: fromEnv('TETHER_AUTH_CACHE_TTL_MS', ms(1_000)),
  /** Pending TCP connections the kernel may queue for accept (capped by net.core.somaxconn). */
  listenBacklog: fromEnv(
    'TETHER_LISTEN_BACKLOG',
    z.coerce.number().int().min(1).max(65_535).default(4_096),
  ),
  /** Fixed cap on new WebSocket sessions per second (and per burst); 0 = none (adaptive only). */
  wsAdmitPerSecond: fromEnv(
    'TETHER_WS_ADMIT_PER_SECOND',
    z.coerce.number().int().min(0).max(1_000_000).default(0),
  ),
  /** Fixed cap on WebSocket handshakes in flight; 0 = the adaptive limit alone. */
  wsMaxHandshakes: fromEnv(
    'TETHER_WS_MAX_HANDSHAKES',
    z.coerce.number().int().min(0).max(1_000_000).default(0),
  ),
  dbPoolMax: fromEnv('TETHER_DB_POOL_MAX', z.coerce.number().int().min(1).max(200).default(20)),
  shutdownTimeoutMs: fromEnv('TETHER_SHUTDOWN_TIMEOUT_MS', ms(8_000)),
  pairingTtlSeconds: fromEnv(
    'TETHER_PAIRING_TTL_SECONDS',
    z.coerce.number().int().min(30).max(86_400).default(600),
  ),
  ratePublicPerMinute: fromEnv(
    'TETHER_RATE_PUBLIC_PER_MINUTE',
    z.coerce.number().int().positive().default(30),
  ),
  rateAuthFailuresPerMinute: fromEnv(
    'TETHER_RATE_AUTH_FAILURES_PER_MINUTE',
    z.coerce.number().int().positive().default(20),
  ),
  rateHeartbeatsPerMinute: fromEnv(
    'TETHER_RATE_HEARTBEATS_PER_MINUTE',
    z.coerce.number().int().positive().default(60),
  ),
  /** Authenticated mutations per principal (participant or node id), heartbeats excepted. */
  rateMutationsPerMinute: fromEnv(
    'TETHER_RATE_MUTATIONS_PER_MINUTE',
    z.coerce.number().int().positive().default(600),
  ),
  /** Calls in one HTTP `?batch=1` request or one WebSocket frame. */
  maxBatchCalls: fromEnv(
    'TETHER_MAX_BATCH_CALLS',
    z.coerce.number().int().min(1).max(10_000).default(50),
  ),
  /** Calls (subscriptions included) one WebSocket may have unanswered at once. */
  wsMaxInFlight: fromEnv(
    'TETHER_WS_MAX_IN_FLIGHT',
    z.coerce.number().int().min(1).max(100_000).default(64),
  ),
  /** A socket opened with `connectionParams=1` must send them within this time. */
  wsAuthDeadlineMs: fromEnv('TETHER_WS_AUTH_DEADLINE_MS', ms(10_000)),
  /** A socket without a principal is closed after this long without a call. */
  wsAnonymousIdleMs: fromEnv('TETHER_WS_ANONYMOUS_IDLE_MS', ms(30_000)),
  /** Sockets not (yet) authenticated, per peer address; more upgrades are refused. */
  wsMaxUnauthenticatedPerPeer: fromEnv(
    'TETHER_WS_MAX_UNAUTHENTICATED_PER_PEER',
    z.coerce.number().int().min(1).max(1_000_000).default(256),
  ),
  trustProxy: fromEnv('TETHER_TRUST_PROXY', flag()),
  /** Members' keys and approvals may name node ids (and so learn which ids exist). */
  memberNodeIds: fromEnv('TETHER_MEMBER_NODE_IDS', flag()),
  /** Bearer token required to read /metrics (wherever it is served). */
  metricsToken: fromEnv(
    'TETHER_METRICS_TOKEN',
    z
      .string()
      .min(16, 'at least 16 characters')
      .max(256)
      .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces (it is sent as a bearer token)')
      .optional(),
  ),
  /** A separate listener for /metrics only; the main port then does not serve it. */
  metricsListen: fromEnv(
    'TETHER_METRICS_LISTEN',
    z
      .string()
      .regex(LISTEN_PATTERN, 'host:port, e.g. 127.0.0.1:9464 or [::1]:9464')
      .transform(parseListen)
      .optional(),
  ),
  /** Browser origins allowed to call /trpc and /api/v1 (CORS); none by default. */
  corsOrigins: fromEnv(
    'TETHER_CORS_ORIGINS',
    z
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
  ),
  /** The built dashboard (index.html, assets/); unset: packages/dashboard/dist. Relative paths as `dataDir`. */
  dashboardDir: fromEnv('TETHER_DASHBOARD_DIR', z.string().min(1).optional()),
  /** The fleet gauges on /metrics are read from the database at most this often. */
  metricsFleetRefreshMs: fromEnv('TETHER_METRICS_FLEET_REFRESH_MS', ms(15_000)),
  logLevel: fromEnv(
    'TETHER_LOG_LEVEL',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
};

type Settings = typeof SETTINGS;

const ConfigSchema = z.object(
  Object.fromEntries(Object.entries(SETTINGS).map(([key, s]) => [key, s.schema])) as {
    [K in keyof Settings]: Settings[K]['schema'];
  },
);

/** The server's settings, as `loadConfig` returns them (camelCase keys of `SETTINGS`). */
export type Config = z.output<typeof ConfigSchema>;

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
  const input = Object.fromEntries(
    Object.entries(SETTINGS).map(([key, s]) => [key, env[s.variable]]),
  );
  const parsed = ConfigSchema.safeParse(input);
  if (!parsed.success) {
    // Zod's messages name the rule, never the value (which may be a secret).
    throw invalid(
      parsed.error.issues.map((i) => ({
        variable: variableOf(i.path[0]),
        message: i.message,
      })),
    );
  }
  const config = parsed.data;
  if (config.degradedAfterMs >= config.offlineAfterMs) {
    throw invalid([
      {
        variable: 'TETHER_DEGRADED_AFTER_MS',
        message: 'must be below TETHER_OFFLINE_AFTER_MS',
      },
    ]);
  }
  if (config.metricsListen && config.metricsListen.port > 65_535) {
    throw invalid([{ variable: 'TETHER_METRICS_LISTEN', message: 'port must be 0–65535' }]);
  }
  // Paths are relative to where the user ran the command (pnpm runs scripts inside the package
  // directory).
  const cwd = env.INIT_CWD ?? process.cwd();
  config.dataDir = resolve(cwd, config.dataDir);
  if (config.dashboardDir !== undefined) config.dashboardDir = resolve(cwd, config.dashboardDir);
  return config;
}

function variableOf(key: PropertyKey | undefined): string {
  return typeof key === 'string' && key in SETTINGS
    ? SETTINGS[key as keyof Settings].variable
    : String(key);
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
