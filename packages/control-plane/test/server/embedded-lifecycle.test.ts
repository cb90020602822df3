/**
 * The embedded PostgreSQL as an operator meets it, through the real `tether-server serve`
 * process on a data directory of its own: who can log in, what a `kill -9` leaves behind, which
 * port it takes, and a graceful stop after PostgreSQL was restarted underneath.
 */
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import {
  alive,
  embeddedEnv,
  embeddedState,
  legacyCluster,
  pgCtl,
  postgresProcessesOn,
  postmasterOf,
  tetherDir,
  watchdogOf,
  type TetherDir,
} from '../embedded-cluster.js';
import { mutate, query } from '../http.js';
import { freePort } from '../postgres.js';
import { launchServer, spawnServer, type ServerProcess } from '../process-server.js';
import { wsClient } from '../wire/actors.js';

const ADMIN = 'tpt_embedded-lifecycle-admin-token-0001';
const WAIT_MS = 90_000;
const TEST_MS = 240_000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function newDir(): Promise<TetherDir> {
  const dir = await tetherDir();
  cleanups.push(() => dir.remove());
  return dir;
}

/** A server the test stops itself; left running on failure, it is stopped afterwards. */
async function serve(
  dir: TetherDir,
  extra: Record<string, string | undefined> = {},
): Promise<ServerProcess> {
  const server = await spawnServer(embeddedEnv(dir, { TETHER_BOOTSTRAP_TOKEN: ADMIN, ...extra }));
  cleanups.push(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
  });
  return server;
}

async function stopped(server: ServerProcess): Promise<number | string> {
  server.child.kill('SIGTERM');
  return server.exited;
}

const readyz = async (url: string): Promise<number> =>
  fetch(`${url}/readyz`)
    .then((r) => r.status)
    .catch(() => 0);

async function occupy(port: number): Promise<Server> {
  // It drops what connects, so its close never waits for a stray client of another test.
  const holder = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.listen({ port, host: '127.0.0.1', exclusive: true }, resolve);
  });
  cleanups.push(() => new Promise((resolve) => holder.close(resolve)));
  return holder;
}

async function login(port: number, user: string, password: string, database = 'postgres') {
  const client = new pg.Client({ host: '127.0.0.1', port, user, password, database });
  await client.connect();
  return client;
}

async function loginError(port: number, user: string, password: string): Promise<string> {
  try {
    const client = await login(port, user, password);
    await client.end();
    return 'logged in';
  } catch (error) {
    return String((error as { code?: unknown }).code);
  }
}

describe('embedded database: credentials', () => {
  it(
    'the superuser has a random password (postgres/postgres is refused), kept 0600 beside the cluster; the server logs in as a non-superuser owner over 127.0.0.1 only',
    async () => {
      const dir = await newDir();
      const server = await serve(dir);
      expect(await readyz(server.url)).toBe(200);
      const created = await mutate(
        server.url,
        'participant.create',
        { name: 'written by the owner role', role: 'member' },
        { token: ADMIN },
      );
      expect(created.status, created.raw).toBe(200);

      const state = await embeddedState(dir);
      expect((await stat(`${dir.pgDir}.json`)).mode & 0o777).toBe(0o600);
      expect(await loginError(state.port, 'postgres', 'postgres')).toBe('28P01');

      const superuser = await login(state.port, 'postgres', state.superuserPassword);
      try {
        const { rows: sessions } = await superuser.query<{ usename: string; usesuper: boolean }>(
          `SELECT a.usename, u.usesuper FROM pg_stat_activity a JOIN pg_user u ON u.usename = a.usename
           WHERE a.application_name IN ('tether-server', 'tether-listen')`,
        );
        expect(sessions.length).toBeGreaterThan(0);
        for (const session of sessions)
          expect(session).toEqual({ usename: 'tether', usesuper: false });
        const { rows: owner } = await superuser.query<{ owner: string }>(
          `SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'tether'`,
        );
        expect(owner).toEqual([{ owner: 'tether' }]);
        const { rows: settings } = await superuser.query<{ listen: string; sockets: string }>(
          `SELECT current_setting('listen_addresses') AS listen,
                  current_setting('unix_socket_directories') AS sockets`,
        );
        expect(settings).toEqual([{ listen: '127.0.0.1', sockets: '' }]);
      } finally {
        await superuser.end();
      }
      expect(await stopped(server)).toBe(0);
    },
    TEST_MS,
  );

  it(
    'a cluster made with the old fixed password gets a random one on its first start, and its data (owned by the superuser until then) is handed to the owner role',
    async () => {
      const dir = await newDir();
      const port = await freePort();
      await legacyCluster(dir.pgDir, port, ADMIN);

      const server = await serve(dir, { TETHER_BOOTSTRAP_TOKEN: undefined });
      expect(server.output()).toContain('replaced the fixed superuser password');
      // The admin made by the old version still works, through the non-superuser role.
      const listed = await query(server.url, 'participant.list', {}, { token: ADMIN });
      expect(listed.status, listed.raw).toBe(200);
      const created = await mutate(
        server.url,
        'participant.create',
        { name: 'after the migration', role: 'member' },
        { token: ADMIN },
      );
      expect(created.status, created.raw).toBe(200);

      const state = await embeddedState(dir);
      expect(await loginError(state.port, 'postgres', 'postgres')).toBe('28P01');
      const superuser = await login(state.port, 'postgres', state.superuserPassword, 'tether');
      try {
        const { rows } = await superuser.query<{ name: string }>(
          `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> 'tether'
           UNION ALL
           SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> 'tether'`,
        );
        expect(rows).toEqual([]);
      } finally {
        await superuser.end();
      }
      expect(await stopped(server)).toBe(0);
    },
    TEST_MS,
  );
});

describe('embedded database: kill -9 of the server', () => {
  it(
    'its PostgreSQL stops with it, and the next start on the data directory becomes ready',
    async () => {
      const dir = await newDir();
      const first = await serve(dir);
      const postmaster = await postmasterOf(dir.pgDir);
      expect(postmaster).not.toBeNull();
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      await eventually(
        () => postgresProcessesOn(dir.pgDir),
        (pids) => pids.length === 0,
        WAIT_MS,
      );

      const second = await serve(dir);
      expect(await readyz(second.url)).toBe(200);
      expect(await stopped(second)).toBe(0);
    },
    TEST_MS,
  );

  it(
    'with its watchdog killed too, the next start stops the orphaned PostgreSQL and becomes ready',
    async () => {
      const dir = await newDir();
      const first = await serve(dir);
      const orphan = await postmasterOf(dir.pgDir);
      const watchdog = await watchdogOf(dir.pgDir);
      expect(orphan).not.toBeNull();
      expect(watchdog).not.toBeNull();
      process.kill(watchdog!, 'SIGKILL');
      await eventually(
        () => alive(watchdog!),
        (isAlive) => !isAlive,
        WAIT_MS,
      );
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      expect(await alive(orphan!)).toBe(true);

      const second = await serve(dir);
      expect(await readyz(second.url)).toBe(200);
      expect(second.output()).toContain('left running on this data directory');
      expect(await alive(orphan!)).toBe(false);
      expect(await stopped(second)).toBe(0);
    },
    TEST_MS,
  );

  it(
    'a second server on a data directory in use is refused with one line naming the process; the first keeps serving',
    async () => {
      const dir = await newDir();
      const first = await serve(dir);
      const second = launchServer(embeddedEnv(dir));
      expect(await second.exited).toBe(1);
      expect(second.output()).toContain(`in use by process ${first.child.pid}`);
      expect(second.output()).not.toMatch(/^\s+at /m);
      expect(await readyz(first.url)).toBe(200);
      expect(await stopped(first)).toBe(0);
    },
    TEST_MS,
  );
});

describe('embedded database: port', () => {
  it(
    'unset TETHER_EMBEDDED_PG_PORT: two data directories run side by side on free ports; a remembered port that is taken is replaced',
    async () => {
      const [a, b] = [await newDir(), await newDir()];
      const [serverA, serverB] = await Promise.all([serve(a), serve(b)]);
      const [portA, portB] = [(await embeddedState(a)).port, (await embeddedState(b)).port];
      expect(portA).not.toBe(portB);
      expect(await readyz(serverA.url)).toBe(200);
      expect(await readyz(serverB.url)).toBe(200);

      expect(await stopped(serverB)).toBe(0);
      await occupy(portB);
      const again = await serve(b);
      expect(await readyz(again.url)).toBe(200);
      const moved = (await embeddedState(b)).port;
      expect(moved).not.toBe(portB);
      expect(again.output()).toContain('port used last time is taken');
      expect(await stopped(again)).toBe(0);
      expect(await stopped(serverA)).toBe(0);
    },
    TEST_MS,
  );

  it(
    'TETHER_EMBEDDED_PG_PORT set to a taken port: exit 1 with one JSON line naming the variable, no stack trace',
    async () => {
      const dir = await newDir();
      const port = await freePort();
      await occupy(port);
      const server = launchServer(embeddedEnv(dir, { TETHER_EMBEDDED_PG_PORT: String(port) }));
      expect(await server.exited).toBe(1);
      const lines = server
        .output()
        .split('\n')
        .filter((line) => line.trim() !== '');
      // JSON lines only: the configuration, then one fatal line naming the variable.
      const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const fatal = records.filter((r) => r.level === 60);
      expect(fatal).toHaveLength(1);
      expect(fatal[0]!.variables).toEqual(['TETHER_EMBEDDED_PG_PORT']);
      expect(String(fatal[0]!.cause)).toContain(`TETHER_EMBEDDED_PG_PORT=${port}`);
      expect(String(fatal[0]!.cause)).toContain('already in use');
    },
    TEST_MS,
  );
});

describe('embedded database: graceful shutdown', () => {
  it(
    'after PostgreSQL was restarted underneath (pg_ctl restart): shutdown complete, exit 0, no PostgreSQL left on the data directory',
    async () => {
      const dir = await newDir();
      // Revalidation of the open socket's credential queries the database every 200 ms.
      const server = await serve(dir, { TETHER_AUTH_CACHE_TTL_MS: '200' });
      const ws = wsClient({ wsUrl: server.url.replace(/^http/, 'ws') + '/trpc' }, { token: ADMIN });
      cleanups.push(() => ws.close());
      await ws.opened;
      const page = await ws.client.participant.list.query({});
      expect(page.items.length).toBeGreaterThan(0);

      const before = await postmasterOf(dir.pgDir);
      expect(await pgCtl(['restart', '-D', dir.pgDir, '-m', 'fast', '-w', '-t', '120'])).toBe(0);
      const after = await postmasterOf(dir.pgDir);
      expect(after).not.toBeNull();
      expect(after).not.toBe(before);
      await eventually(
        () => readyz(server.url),
        (status) => status === 200,
        WAIT_MS,
      );

      expect(await stopped(server)).toBe(0);
      expect(server.output()).toContain('shutdown complete');
      expect(server.output()).not.toContain('Cannot use a pool after calling end');
      expect(await postgresProcessesOn(dir.pgDir)).toEqual([]);
    },
    TEST_MS,
  );
});
