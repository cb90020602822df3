/**
 * The naive baseline the bench compares Tether with, in the same run, on the same transport (tRPC
 * over HTTP and WebSocket, the same contract schema for the input) and the same PostgreSQL: one
 * single-row UPSERT per heartbeat, autocommitted, acknowledged after its own commit — how reference
 * implementations keep presence.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { HeartbeatInput } from '@tether/contracts';
import { initTRPC, TRPCError } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import pg from 'pg';
import superjson from 'superjson';
import { WebSocketServer } from 'ws';
import { BASELINE_COMMANDS_TABLE, BASELINE_TABLE } from './schema.js';

const UPSERT = `INSERT INTO ${BASELINE_TABLE} (node_id, health_state, last_heartbeat_at, metrics)
VALUES ($1, $2, now(), $3)
ON CONFLICT (node_id) DO UPDATE SET health_state = EXCLUDED.health_state,
  last_heartbeat_at = EXCLUDED.last_heartbeat_at,
  metrics = COALESCE(EXCLUDED.metrics, ${BASELINE_TABLE}.metrics)`;

const LIST = `SELECT node_id, health_state FROM ${BASELINE_TABLE}
WHERE node_id BETWEEN $1 AND $2 ORDER BY node_id`;

const CMD_INVOKE = `INSERT INTO ${BASELINE_COMMANDS_TABLE} (node_id, input) VALUES ($1, $2) RETURNING id`;
const CMD_POLL = `UPDATE ${BASELINE_COMMANDS_TABLE} SET state = 'delivered'
WHERE node_id = $1 AND state = 'pending' RETURNING id, input`;
const CMD_RESULT = `UPDATE ${BASELINE_COMMANDS_TABLE} SET state = 'succeeded', output = $2, finished_at = now()
WHERE id = $1 AND state = 'delivered'`;
const CMD_GET = `SELECT state, output FROM ${BASELINE_COMMANDS_TABLE} WHERE id = $1`;

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    req.on('error', reject);
  });
}

/** The `/cmd/*` routes; false when `path` is not one of them. */
function commandRoute(
  pool: pg.Pool,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
): boolean {
  if (!path.startsWith('/cmd/')) return false;
  const url = new URL(req.url ?? '/', 'http://baseline');
  const send = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const handle = async (): Promise<void> => {
    if (path === '/cmd/invoke' && req.method === 'POST') {
      const body = await readJson(req);
      const { rows } = await pool.query<{ id: string }>(CMD_INVOKE, [
        String(body.nodeId),
        JSON.stringify(body.input ?? {}),
      ]);
      send(200, { id: rows[0]!.id });
    } else if (path === '/cmd/poll') {
      const { rows } = await pool.query<{ id: string; input: unknown }>(CMD_POLL, [
        url.searchParams.get('node') ?? '',
      ]);
      send(200, rows);
    } else if (path === '/cmd/result' && req.method === 'POST') {
      const body = await readJson(req);
      await pool.query(CMD_RESULT, [String(body.id), JSON.stringify(body.output ?? null)]);
      send(200, null);
    } else if (path === '/cmd/get') {
      const { rows } = await pool.query<{ state: string; output: unknown }>(CMD_GET, [
        url.searchParams.get('id') ?? '0',
      ]);
      if (rows[0]) send(200, rows[0]);
      else send(404, { error: 'not found' });
    } else {
      send(404, { error: 'not found' });
    }
  };
  handle().catch((error: unknown) => send(500, { error: String(error) }));
  return true;
}

interface Context {
  nodeId: string | null;
}

/** `presence.list` input: an inclusive node-id range (the bench's ids are zero-padded). */
function rangeInput(raw: unknown): { from: string; to: string } {
  const { from, to } = (raw ?? {}) as { from?: unknown; to?: unknown };
  if (typeof from !== 'string' || typeof to !== 'string') {
    throw new TRPCError({ code: 'BAD_REQUEST', message: 'from and to are required' });
  }
  return { from, to };
}

function main(): void {
  const databaseUrl = process.env.DATABASE_URL;
  const port = Number(process.env.BASELINE_PORT ?? 4100);
  if (!databaseUrl) throw new Error('DATABASE_URL is required');
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: Number(process.env.BASELINE_POOL_MAX ?? 20),
    application_name: 'bench-baseline',
  });

  const principals = new Map<string, Promise<string | null>>();
  const authenticate = (token: string | null): Promise<string | null> => {
    if (!token) return Promise.resolve(null);
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
  };

  // The same transformer as Tether's tRPC wire, so both servers decode the same frames.
  const t = initTRPC.context<Context>().create({ transformer: superjson });
  const router = t.router({
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
    createContext: async ({ req }) => {
      const header = req.headers.authorization ?? '';
      const token = header.startsWith('Bearer ') ? header.slice(7) : null;
      return { nodeId: await authenticate(token) };
    },
  });
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/livez') {
      res.writeHead(200).end('ok');
      return;
    }
    if (path === '/metrics') {
      const body =
        `baseline_nodejs_eventloop_lag_p99_seconds ${lag.percentile(99) / 1e9}\n` +
        `baseline_nodejs_eventloop_lag_max_seconds ${lag.max / 1e9}\n`;
      lag.reset();
      res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
      return;
    }
    if (commandRoute(pool, path ?? '/', req, res)) return;
    http(req, res);
  });
  const wss = new WebSocketServer({ server });
  const ws = applyWSSHandler<typeof router>({
    wss,
    router,
    keepAlive: { enabled: true, pingMs: 3_000, pongWaitMs: 2_000 },
    createContext: async ({ info }) => {
      const token = info.connectionParams?.token;
      return { nodeId: await authenticate(typeof token === 'string' ? token : null) };
    },
  });
  server.listen(port, '127.0.0.1');

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
}

main();
