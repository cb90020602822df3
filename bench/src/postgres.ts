/**
 * PostgreSQL for the bench: `DATABASE_URL` if set (a role that may create databases), else the
 * control plane's embedded PostgreSQL in `bench/.data/pg` on a free loopback port.
 */
import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from './tether-internals.js';

export type BenchPostgres = Awaited<ReturnType<typeof startBenchPostgres>>;

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function maintenance(url: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'tether-bench' });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

export async function startBenchPostgres(dataDir: string, log: (line: string) => void) {
  const external = process.env.DATABASE_URL;
  let adminUrl: string;
  let stop: () => Promise<void> = () => Promise.resolve();
  let pidFile: string | null = null;
  if (external) {
    adminUrl = external;
    log(`PostgreSQL: DATABASE_URL (${new URL(external).host})`);
  } else {
    const pgDir = join(dataDir, 'pg');
    const port = await freeLoopbackPort();
    // Every run starts from a fresh cluster (initdb takes a second or two): no bloat, no stats
    // and no settings carried over. Refuse if a previous run's PostgreSQL still runs on it.
    await refuseIfRunning(pgDir);
    await rm(pgDir, { recursive: true, force: true });
    log(`PostgreSQL: embedded, ${pgDir}, port ${port}`);
    const embedded = await startEmbeddedPostgres({ dataDir: pgDir, port, persistent: true });
    adminUrl = embedded.connectionString('postgres');
    stop = () => embedded.stop();
    pidFile = join(pgDir, 'postmaster.pid');
  }
  const drop = (database: string): Promise<void> =>
    maintenance(adminUrl, [`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`]);
  return {
    /** A database on the same server (only the URL's path is replaced). */
    urlFor: (database: string) => withDatabase(adminUrl, database),
    recreate: async (database: string) => {
      await drop(database);
      await maintenance(adminUrl, [`CREATE DATABASE ${database}`]);
    },
    drop,
    postmasterPid: async () => {
      if (!pidFile) return localPostmaster(adminUrl);
      const first = (await readFile(pidFile, 'utf8')).split('\n')[0];
      const pid = Number.parseInt(first ?? '', 10);
      return Number.isFinite(pid) ? pid : null;
    },
    embedded: !external,
    stop,
  };
}

/**
 * A `DATABASE_URL` server that runs on this machine (a PostgreSQL of one's own, as when the
 * embedded one is busy): its postmaster is the parent of our backend process, so its CPU can be
 * sampled like the embedded one's.
 */
async function localPostmaster(url: string): Promise<number | null> {
  const client = new pg.Client({ connectionString: url, application_name: 'tether-bench' });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`);
    const backend = rows[0]?.pid;
    if (backend === undefined) return null;
    const comm = (await readFile(`/proc/${backend}/comm`, 'utf8')).trim();
    if (comm !== 'postgres') return null;
    const stat = await readFile(`/proc/${backend}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state, then ppid.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) && ppid > 1 ? ppid : null;
  } catch {
    return null;
  } finally {
    await client.end();
  }
}

async function refuseIfRunning(pgDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt(
      (await readFile(join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0] ?? '',
      10,
    );
  } catch {
    return; // no pid file: clean shutdown or never started
  }
  try {
    process.kill(pid, 0);
  } catch {
    return; // the process is gone
  }
  throw new Error(
    `A PostgreSQL (pid ${pid}) still runs on ${pgDir}; a previous bench run did not stop. ` +
      `Stop it (kill ${pid}) or delete ${pgDir}.`,
  );
}

/** Cumulative counters to diff over a measurement window. */
export interface PgSnapshot {
  walLsn: string;
  /**
   * The next transaction id (xmax of a fresh snapshot): its growth counts write transactions
   * exactly and at once, unlike the statistics counters, which backends flush about once a second.
   */
  nextXid: number;
  tables: Record<string, TableCounts>;
}

export async function pgSnapshot(client: pg.ClientBase, tables: string[]): Promise<PgSnapshot> {
  const { rows } = await client.query<{ lsn: string; xid: string; stats: TableCounts[] | null }>(
    `SELECT pg_current_wal_lsn()::text AS lsn,
            pg_snapshot_xmax(pg_current_snapshot())::text AS xid,
            (SELECT json_agg(json_build_object('table', relname, 'inserts', n_tup_ins,
                      'updates', n_tup_upd, 'hotUpdates', n_tup_hot_upd))
               FROM pg_stat_user_tables WHERE relname = ANY($1)) AS stats`,
    [tables],
  );
  const row = rows[0]!;
  const counts = Object.fromEntries((row.stats ?? []).map((t) => [t.table!, t] as const));
  return { walLsn: row.lsn, nextXid: Number(row.xid), tables: counts };
}

export interface TableCounts {
  table?: string;
  inserts: number;
  updates: number;
  hotUpdates: number;
}

/** Row counters of one table over a window (statistics counters: see PgSnapshot). */
export function tableDelta(before: PgSnapshot, after: PgSnapshot, table: string): TableCounts {
  const none = { inserts: 0, updates: 0, hotUpdates: 0 };
  const [b, a] = [before.tables[table] ?? none, after.tables[table] ?? none];
  return {
    inserts: a.inserts - b.inserts,
    updates: a.updates - b.updates,
    hotUpdates: a.hotUpdates - b.hotUpdates,
  };
}

/** WAL bytes, write transactions (xids assigned, whole cluster) and `table`'s updates between two snapshots. */
export async function pgDelta(
  client: pg.ClientBase,
  before: PgSnapshot,
  after: PgSnapshot,
  table: string,
): Promise<{ walBytes: number; writeTransactions: number; updates: number; hotUpdates: number }> {
  const { rows } = await client.query<{ bytes: string }>(
    `SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::text AS bytes`,
    [before.walLsn, after.walLsn],
  );
  const { updates, hotUpdates } = tableDelta(before, after, table);
  const writeTransactions = after.nextXid - before.nextXid;
  return { walBytes: Number(rows[0]!.bytes), writeTransactions, updates, hotUpdates };
}
