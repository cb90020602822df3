/** PostgreSQL for the bench: `DATABASE_URL` if set, else a fresh embedded one in bench/.data/pg. */
import { readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { readStat } from './proc.js';
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

/** Runs `work` on a connection of its own to `url`. */
async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'tether-bench' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const pidIn = async (pidFile: string): Promise<number> =>
  Number.parseInt((await readFile(pidFile, 'utf8')).split('\n')[0] ?? '', 10);

export async function startBenchPostgres(dataDir: string, log: (line: string) => void) {
  const external = process.env.DATABASE_URL;
  let adminUrl: string;
  let stop = (): Promise<void> => Promise.resolve();
  let pidFile: string | null = null;
  if (external) {
    adminUrl = external;
    log(`PostgreSQL: DATABASE_URL (${new URL(external).host})`);
  } else {
    const pgDir = join(dataDir, 'pg');
    const port = await freeLoopbackPort();
    // A fresh cluster every run (no bloat, stats or settings carried over), unless one still runs.
    pidFile = join(pgDir, 'postmaster.pid');
    await refuseIfRunning(pidFile);
    await rm(pgDir, { recursive: true, force: true });
    log(`PostgreSQL: embedded, ${pgDir}, port ${port}`);
    const embedded = await startEmbeddedPostgres({ dataDir: pgDir, port, persistent: true });
    adminUrl = embedded.connectionString('postgres');
    stop = () => embedded.stop();
  }
  const run = (statement: string): Promise<unknown> =>
    withClient(adminUrl, (client) => client.query(statement));
  const drop = async (database: string): Promise<void> => {
    await run(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  };
  return {
    /** A database on the same server (only the URL's path is replaced). */
    urlFor: (database: string) => {
      const url = new URL(adminUrl);
      url.pathname = `/${database}`;
      return url.toString();
    },
    recreate: async (database: string) => {
      await drop(database);
      await run(`CREATE DATABASE ${database}`);
    },
    drop,
    postmasterPid: async () => {
      if (!pidFile) return localPostmaster(adminUrl);
      const pid = await pidIn(pidFile);
      return Number.isFinite(pid) ? pid : null;
    },
    embedded: !external,
    stop,
  };
}

/**
 * A `DATABASE_URL` server on this machine: its postmaster is the parent of our backend process,
 * so its CPU can be sampled like the embedded one's.
 */
function localPostmaster(url: string): Promise<number | null> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`);
    const backend = rows[0]?.pid;
    if (backend === undefined) return null;
    const comm = await readFile(`/proc/${backend}/comm`, 'utf8').catch(() => '');
    const ppid = comm.trim() === 'postgres' ? (await readStat(backend))?.ppid : undefined;
    return ppid !== undefined && Number.isInteger(ppid) && ppid > 1 ? ppid : null;
  }).catch(() => null);
}

async function refuseIfRunning(pidFile: string): Promise<void> {
  const pid = await pidIn(pidFile).catch(() => null); // no pid file: clean shutdown or never run
  if (pid === null) return;
  try {
    process.kill(pid, 0);
  } catch {
    return; // the process is gone
  }
  const pgDir = join(pidFile, '..');
  throw new Error(
    `A PostgreSQL (pid ${pid}) still runs on ${pgDir}; a previous bench run did not stop. ` +
      `Stop it (kill ${pid}) or delete ${pgDir}.`,
  );
}

/** Cumulative counters to diff over a window; `nextXid` counts write transactions exactly. */
export type PgSnapshot = Awaited<ReturnType<typeof pgSnapshot>>;

type TableCounts = { inserts: number; updates: number; hotUpdates: number };

/** A WAL position (`X/Y`, hexadecimal) in bytes. */
const lsnBytes = (lsn: string): number =>
  lsn.split('/').reduce((high, low) => high * 2 ** 32 + Number.parseInt(low, 16), 0);

export async function pgSnapshot(client: pg.ClientBase, tables: string[]) {
  const { rows } = await client.query<{
    lsn: string;
    xid: string;
    stats: (TableCounts & { table: string })[] | null;
  }>(
    `SELECT pg_current_wal_lsn()::text AS lsn,
            pg_snapshot_xmax(pg_current_snapshot())::text AS xid,
            (SELECT json_agg(json_build_object('table', relname, 'inserts', n_tup_ins,
                      'updates', n_tup_upd, 'hotUpdates', n_tup_hot_upd))
               FROM pg_stat_user_tables WHERE relname = ANY($1)) AS stats`,
    [tables],
  );
  const row = rows[0]!;
  const counts = Object.fromEntries((row.stats ?? []).map((t) => [t.table, t] as const));
  return { walBytes: lsnBytes(row.lsn), nextXid: Number(row.xid), tables: counts };
}

/** Row counters of one table over a window (statistics counters, flushed about once a second). */
export function tableDelta(before: PgSnapshot, after: PgSnapshot, table: string): TableCounts {
  const d = (k: keyof TableCounts): number =>
    (after.tables[table]?.[k] ?? 0) - (before.tables[table]?.[k] ?? 0);
  return { inserts: d('inserts'), updates: d('updates'), hotUpdates: d('hotUpdates') };
}

/** WAL bytes, write transactions (whole cluster) and `table`'s row counters between snapshots. */
export const pgDelta = (before: PgSnapshot, after: PgSnapshot, table: string) => ({
  walBytes: after.walBytes - before.walBytes,
  writeTransactions: after.nextXid - before.nextXid,
  ...tableDelta(before, after, table),
});
