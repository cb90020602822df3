/**
 * A server that cannot start says so in JSON lines and exits 1: the database is retried with
 * backoff (a warn line per attempt) for at most TETHER_DB_CONNECT_TIMEOUT_MS, then one fatal line
 * names the variable to check and the cause, without the password and without a stack trace.
 * A database that comes up within the window is used.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { freePort } from '../postgres.js';
import { launchServer, type LaunchedServer } from '../process-server.js';

const SECRET = 'hunter2-do-not-print-me';
const TEST_MS = 60_000;

type LogLine = Record<string, unknown> & { level: number; msg: string };

const launched: LaunchedServer[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const server of launched.splice(0)) {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
  }
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function launch(env: Record<string, string | undefined>): LaunchedServer {
  const server = launchServer({ TETHER_LOG_LEVEL: 'info', ...env });
  launched.push(server);
  return server;
}

/** Every stdout line parsed as JSON (throws on a line that is not), and nothing on stderr. */
function jsonLines(server: LaunchedServer): LogLine[] {
  expect(server.stderr()).toBe('');
  return server
    .stdout()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LogLine);
}

function assertNoLeaks(server: LaunchedServer): void {
  expect(server.output()).not.toContain(SECRET);
  expect(server.output()).not.toMatch(/^\s+at /m);
}

/** A TCP forwarder on `port` to `target`, opened when the test decides. */
async function forward(port: number, target: { host: string; port: number }): Promise<Server> {
  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    proxy.once('error', reject);
    proxy.listen(port, '127.0.0.1', () => resolve());
  });
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  });
  return proxy;
}

describe('startup failures', () => {
  it(
    'unreachable DATABASE_URL: JSON lines only, warn per retry with attempt and delay, one fatal line naming DATABASE_URL, exit 1, no password',
    async () => {
      const port = await freePort();
      const server = launch({
        DATABASE_URL: `postgres://tether:${SECRET}@127.0.0.1:${port}/tether`,
        TETHER_DB_CONNECT_TIMEOUT_MS: '1500',
      });
      expect(await server.exited).toBe(1);
      const lines = jsonLines(server);
      const retries = lines.filter((l) => l.msg === 'database unavailable; retrying');
      expect(retries.length).toBeGreaterThanOrEqual(2);
      expect(retries.map((r) => r.attempt)).toEqual(retries.map((_, i) => i + 1));
      for (const r of retries) {
        expect(r.level).toBe(40);
        expect(r.variable).toBe('DATABASE_URL');
        expect(r.cause).toMatch(/connection refused/);
        expect(typeof r.delayMs).toBe('number');
      }
      // Exponential: each full delay doubles the one before.
      expect(retries[1]!.delayMs).toBe((retries[0]!.delayMs as number) * 2);
      const last = lines.at(-1)!;
      expect(last.level).toBe(60);
      expect(last.msg).toBe('database unavailable; giving up');
      expect(last.variable).toBe('DATABASE_URL');
      expect(last.database).toBe(`postgres://tether:***@127.0.0.1:${port}/tether`);
      expect(last.cause).toMatch(/ECONNREFUSED/);
      expect(lines.filter((l) => l.level === 60)).toHaveLength(1);
      assertNoLeaks(server);
    },
    TEST_MS,
  );

  it(
    'wrong credentials: retried, then one fatal line saying authentication failed, without the password',
    async () => {
      const database = await createTestDatabase();
      cleanups.push(() => database.drop());
      const url = new URL(database.url);
      url.username = 'tether_no_such_role';
      url.password = SECRET;
      const server = launch({
        DATABASE_URL: url.toString(),
        TETHER_DB_CONNECT_TIMEOUT_MS: '500',
      });
      expect(await server.exited).toBe(1);
      const lines = jsonLines(server);
      expect(lines.some((l) => l.msg === 'database unavailable; retrying')).toBe(true);
      const last = lines.at(-1)!;
      expect(last.level).toBe(60);
      expect(last.variable).toBe('DATABASE_URL');
      expect(last.cause).toMatch(/authentication failed/);
      assertNoLeaks(server);
    },
    TEST_MS,
  );

  it(
    'invalid configuration: one fatal JSON line naming each variable, exit 1, before any database',
    async () => {
      const server = launch({
        TETHER_PORT: 'not-a-port',
        DATABASE_URL: `mysql://root:${SECRET}@db/tether`,
      });
      expect(await server.exited).toBe(1);
      const lines = jsonLines(server);
      expect(lines).toHaveLength(1);
      expect(lines[0]!.level).toBe(60);
      expect(lines[0]!.msg).toBe('invalid configuration');
      expect(lines[0]!.variables).toEqual(['TETHER_PORT', 'DATABASE_URL']);
      assertNoLeaks(server);
    },
    TEST_MS,
  );

  it(
    'a database that comes up during the retry window is used: the server starts and serves',
    async () => {
      const database = await createTestDatabase();
      cleanups.push(() => database.drop());
      const real = new URL(database.url);
      const port = await freePort();
      const late = new URL(database.url);
      late.hostname = '127.0.0.1';
      late.port = String(port);
      const server = launch({
        DATABASE_URL: late.toString(),
        TETHER_DB_CONNECT_TIMEOUT_MS: '60000',
      });
      // It is retrying: the database "appears" now, on the port it was told.
      await eventually(
        () => Promise.resolve(server.stdout().includes('database unavailable; retrying')),
        (seen) => seen,
        TEST_MS / 2,
      );
      await forward(port, { host: real.hostname, port: Number(real.port || 5432) });
      const url = await eventually(
        () => Promise.resolve(/"url":"(http:\/\/[^"]+)","trpc"/.exec(server.stdout())?.[1]),
        (found) => found !== undefined,
        TEST_MS / 2,
      );
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      const lines = jsonLines(server);
      const reachable = lines.find((l) => l.msg === 'database reachable');
      expect(reachable?.attempts).toBeGreaterThanOrEqual(2);
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    },
    TEST_MS,
  );
});
