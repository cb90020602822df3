/**
 * The naive baseline the bench compares Tether with (docs/performance.md, "The naive baseline"):
 * the same transport and input schema, one autocommitted single-row UPSERT per heartbeat.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CONTRACT_VERSION, HeartbeatInput, SUPPORTED_CONTRACT_MAJORS } from '@tether/contracts';
import { initTRPC, TRPCError } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import pg from 'pg';
import superjson from 'superjson';
import { WebSocketServer } from 'ws';
import { readBody } from '../wire.js';
import { BASELINE_COMMANDS_TABLE as COMMANDS, BASELINE_TABLE } from './schema.js';

const UPSERT = `INSERT INTO ${BASELINE_TABLE} (node_id, health_state, last_heartbeat_at, metrics)
VALUES ($1, $2, now(), $3)
ON CONFLICT (node_id) DO UPDATE SET health_state = EXCLUDED.health_state,
  last_heartbeat_at = EXCLUDED.last_heartbeat_at,
  metrics = COALESCE(EXCLUDED.metrics, ${BASELINE_TABLE}.metrics)`;

const LIST = `SELECT node_id, health_state FROM ${BASELINE_TABLE}
WHERE node_id BETWEEN $1 AND $2 ORDER BY node_id`;

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) throw new Error('DATABASE_URL is required');
const pool = new pg.Pool({
  connectionString: databaseUrl,
  max: Number(process.env.BASELINE_POOL_MAX ?? 20),
  application_name: 'bench-baseline',
});

const json = async (req: IncomingMessage) =>
  JSON.parse(await readBody(req)) as {
    nodeId?: unknown;
    input?: unknown;
    id?: unknown;
    output?: unknown;
  };

/** The `/cmd/*` routes (commands: a row per invocation, picked up by its node's next poll). */
const COMMAND_ROUTES: Record<string, (req: IncomingMessage, url: URL) => Promise<unknown>> = {
  'POST /cmd/invoke': async (req) => {
    const body = await json(req);
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO ${COMMANDS} (node_id, input) VALUES ($1, $2) RETURNING id`,
      [String(body.nodeId), JSON.stringify(body.input ?? {})],
    );
    return { id: rows[0]!.id };
  },
  '/cmd/poll': async (_req, url) =>
    (
      await pool.query<{ id: string; input: unknown }>(
        `UPDATE ${COMMANDS} SET state = 'delivered'
          WHERE node_id = $1 AND state = 'pending' RETURNING id, input`,
        [url.searchParams.get('node') ?? ''],
      )
    ).rows,
  'POST /cmd/result': async (req) => {
    const body = await json(req);
    await pool.query(
      `UPDATE ${COMMANDS} SET state = 'succeeded', output = $2, finished_at = now()
        WHERE id = $1 AND state = 'delivered'`,
      [String(body.id), JSON.stringify(body.output ?? null)],
    );
    return null;
  },
  '/cmd/get': async (_req, url) =>
    (
      await pool.query<{ state: string; output: unknown }>(
        `SELECT state, output FROM ${COMMANDS} WHERE id = $1`,
        [url.searchParams.get('id') ?? '0'],
      )
    ).rows[0],
};

const principals = new Map<string, Promise<string | null>>();
function authenticate(token: unknown): Promise<string | null> {
  if (typeof token !== 'string' || !token) return Promise.resolve(null);
  const hash = createHash('sha256').update(token, 'utf8').digest();
  const key = hash.toString('hex');
  let found = principals.get(key);
  if (!found) {
    found = pool
      .query<{ node_id: string }>(
        `SELECT node_id FROM nodes WHERE token_hash = $1 AND status = 'active'`,
        [hash],
      )
      .then((r) => r.rows[0]?.node_id ?? null);
    principals.set(key, found);
  }
  return found;
}

/** `presence.list` input: an inclusive node-id range (the bench's ids are zero-padded). */
function rangeInput(raw: unknown): { from: string; to: string } {
  const { from, to } = (raw ?? {}) as { from?: unknown; to?: unknown };
  if (typeof from !== 'string' || typeof to !== 'string') {
    throw new TRPCError({ code: 'BAD_REQUEST', message: 'from and to are required' });
  }
  return { from, to };
}

/** `Authorization: Bearer <token>` (an SDK node's upgrade, an HTTP call), else null. */
const bearer = (req: IncomingMessage): string | null =>
  /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1] ?? null;

/**
 * What SDK nodes ask a server without Tether's handshake answer before they beat: the cadence
 * (the bench's 15 s) and the contract; a naive server has no sweep, so its thresholds are nominal.
 */
const INFO = {
  serverVersion: 'bench-baseline',
  contractVersion: CONTRACT_VERSION,
  supportedContractMajors: SUPPORTED_CONTRACT_MAJORS,
  heartbeatIntervalMs: 15_000,
  degradedAfterMs: 30_000,
  offlineAfterMs: 60_000,
  sweepIntervalMs: 10_000,
  caller: null,
};

// The same transformer as Tether's tRPC wire, so both servers decode the same frames.
const t = initTRPC.context<{ nodeId: string | null }>().create({ transformer: superjson });
const router = t.router({
  system: t.router({ info: t.procedure.query(() => INFO) }),
  runtimenode: t.router({
    heartbeat: t.procedure.input(HeartbeatInput).mutation(async ({ ctx, input }) => {
      if (ctx.nodeId === null) throw new TRPCError({ code: 'UNAUTHORIZED' });
      if (ctx.nodeId !== input.nodeId) throw new TRPCError({ code: 'FORBIDDEN' });
      await pool.query(UPSERT, [
        input.nodeId,
        input.healthState,
        input.metrics === undefined ? null : JSON.stringify(input.metrics),
      ]);
      return null;
    }),
  }),
  presence: t.router({
    list: t.procedure.input(rangeInput).query(async ({ input }) => {
      const { rows } = await pool.query<{ node_id: string; health_state: string }>(LIST, [
        input.from,
        input.to,
      ]);
      return rows.map((r) => ({ nodeId: r.node_id, healthState: r.health_state }));
    }),
  }),
});

// The same event-loop delay probe Tether exports (prom-client: 10 ms timer, reset per scrape).
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();

const http = createHTTPHandler({
  router,
  basePath: '/trpc/',
  createContext: async ({ req }) => ({ nodeId: await authenticate(bearer(req)) }),
});
const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const send = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  if (path === '/livez') {
    res.writeHead(200).end('ok');
  } else if (path === '/metrics') {
    const body =
      `baseline_nodejs_eventloop_lag_p99_seconds ${lag.percentile(99) / 1e9}\n` +
      `baseline_nodejs_eventloop_lag_max_seconds ${lag.max / 1e9}\n`;
    lag.reset();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  } else if (path.startsWith('/cmd/')) {
    const route = COMMAND_ROUTES[`${req.method} ${path}`] ?? COMMAND_ROUTES[path];
    const url = new URL(req.url ?? '/', 'http://baseline');
    (route ? route(req, url) : Promise.resolve(undefined)).then(
      (body) => (body === undefined ? send(404, { error: 'not found' }) : send(200, body)),
      (error: unknown) => send(500, { error: String(error) }),
    );
  } else {
    http(req, res);
  }
});
const wss = new WebSocketServer({ server });
const ws = applyWSSHandler<typeof router>({
  wss,
  router,
  keepAlive: { enabled: true, pingMs: 3_000, pongWaitMs: 2_000 },
  // The bench's raw clients send the token in connectionParams, SDK nodes in the upgrade.
  createContext: async ({ req, info }) => ({
    nodeId: await authenticate(info.connectionParams?.token ?? bearer(req)),
  }),
});
server.listen(Number(process.env.BASELINE_PORT ?? 4100), '127.0.0.1');

const stop = (): void => {
  ws.broadcastReconnectNotification();
  for (const socket of wss.clients) socket.terminate();
  wss.close();
  server.close();
  server.closeAllConnections();
  // The pool cannot end if PostgreSQL is already gone: exit regardless after a moment.
  setTimeout(() => process.exit(0), 2_000).unref();
  void pool.end().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
