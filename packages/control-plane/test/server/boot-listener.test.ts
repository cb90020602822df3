/**
 * `tether-server serve` holds its port from its first milliseconds (bin/boot-listener.mjs,
 * decision 0023): while the server loads and waits for its database, clients are told
 * "starting, retry in 1–3 s" with the typed error instead of being refused at TCP level; once
 * the server is up, the same port serves it. Through a real process, real sockets, and a
 * database that becomes reachable only when the test says so.
 */
import { once } from 'node:events';
import { Agent, createServer as createHttpServer, request } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { TetherError } from '@tether/contracts';
import { afterEach, describe, expect, it } from 'vitest';
import { listenOn } from '../../src/server/listen.js';
import { errorShape } from '../../src/server/transport-shared.js';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { freePort } from '../postgres.js';
import { launchServer } from '../process-server.js';
import { upgrade } from '../upgrade.js';
import {
  openBootListener,
  RETRY_MIN_MS,
  RETRY_MAX_MS,
  startingRefusal,
} from '../../bin/boot-listener.mjs';

const refusal = startingRefusal;
const TOKEN = `tpt_${'b'.repeat(40)}`;
const WAITING = 'database unavailable; retrying';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** A TCP proxy to `target` on `port`, listening only once `open()` is called. */
function databaseDoor(target: URL, port: number) {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  return {
    async open(): Promise<void> {
      server = createServer((client) => {
        const upstream = connect(Number(target.port), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
    },
    close(): Promise<void> {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}

describe('the boot listener', () => {
  it('answers what the server formatter would: system.unavailable with retryAfterMs', () => {
    const message = 'The server is starting; retry in 1500 ms.';
    expect(refusal(1_500)).toEqual({
      error: errorShape(new TetherError('system.unavailable', message, { retryAfterMs: 1_500 })),
    });
  });

  it('the server that adopts it serves its connections, tracks them and closes idle ones at shutdown', async () => {
    const port = await freePort();
    await openBootListener({ TETHER_PORT: String(port), TETHER_HOST: '127.0.0.1' });
    const server = createHttpServer((_req, res) => res.end('served'));
    // Only closeIdleConnections() can close the idle socket within this test's time.
    server.keepAliveTimeout = 600_000;
    const listener = await listenOn(server, { port, host: '127.0.0.1', backlog: 16 });
    cleanups.push(() => {
      server.closeAllConnections();
      server.close();
      return new Promise((resolve) => listener.close(resolve));
    });
    // One keep-alive request through the held listener: answered by the adopting server, and
    // its socket stays open, idle — until the server closes its idle connections.
    const { closed } = await new Promise<{ closed: Promise<void> }>((resolve, reject) => {
      // Keep-alive without an idle timeout of its own (Node's global agent closes after 5 s).
      const agent = new Agent({ keepAlive: true });
      const req = request({ port, host: '127.0.0.1', path: '/', agent });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        res.on('end', () => {
          expect(text).toBe('served');
          const socket = req.socket!;
          resolve({ closed: new Promise<void>((done) => socket.once('close', () => done())) });
        });
      });
      req.on('error', reject);
      req.end();
    });
    await new Promise((resolve) => setImmediate(resolve)); // the response's socket turns idle
    server.closeIdleConnections();
    await closed;
  });

  it('holds the port while the server waits for its database: 503 starting with a paced retry time (HTTP and WebSocket), /livez 200, /readyz 503; then the same port serves the server', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const dbPort = await freePort();
    const door = databaseDoor(new URL(db.url), dbPort);
    cleanups.push(() => door.close());
    const behindDoor = new URL(db.url);
    behindDoor.port = String(dbPort);
    const port = await freePort();
    const server = launchServer(
      {
        DATABASE_URL: behindDoor.toString(),
        TETHER_DB_CONNECT_TIMEOUT_MS: '60000',
        TETHER_PORT: String(port),
        TETHER_BOOTSTRAP_TOKEN: TOKEN,
      },
      ['bin/tether-server.mjs'],
    );
    cleanups.push(async () => {
      server.child.kill('SIGKILL');
      await server.exited;
    });
    const base = `http://127.0.0.1:${port}`;

    // Held before the server has even logged its configuration… and while it waits.
    const live = await eventually(
      () =>
        fetch(`${base}/livez`).then(
          (r) => r.status,
          () => 0,
        ),
      (status) => status !== 0,
    );
    expect(live).toBe(200);
    await eventually(
      () => Promise.resolve(server.output()),
      (output) => output.includes(WAITING),
    );
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'starting' });

    const call = await fetch(`${base}/trpc/system.info`);
    expect(call.status).toBe(503);
    const body = (await call.json()) as {
      error: { data: { tetherError: { details: { retryAfterMs: number } } } };
    };
    const waitMs = body.error.data.tetherError.details.retryAfterMs;
    expect(waitMs).toBeGreaterThanOrEqual(RETRY_MIN_MS);
    expect(waitMs).toBeLessThanOrEqual(RETRY_MAX_MS);
    expect(body).toEqual(refusal(waitMs));
    expect(call.headers.get('retry-after')).toBe(String(Math.ceil(waitMs / 1_000)));

    const refused = await upgrade(base);
    if (refused.admitted) throw new Error('upgraded while starting');
    expect(refused.status).toBe(503);
    const refusedBody = JSON.parse(refused.body) as typeof body;
    const wsWait = refusedBody.error.data.tetherError.details.retryAfterMs;
    expect(refusedBody).toEqual(refusal(wsWait));
    expect(refused.retryAfter).toBe(String(Math.ceil(wsWait / 1_000)));

    // The database answers: the server starts on the port the boot listener held.
    await door.open();
    await eventually(
      () => Promise.resolve(server.output()),
      (output) => output.includes('tether listening'),
      60_000,
    );
    expect(server.output()).toContain(`"url":"http://127.0.0.1:${port}"`);
    const readyNow = await fetch(`${base}/readyz`);
    expect(readyNow.status).toBe(200);
    expect((await fetch(`${base}/trpc/system.info`)).status).toBe(200);
    expect(await upgrade(base)).toEqual({ admitted: true });

    server.child.kill('SIGTERM');
    expect(await server.exited, server.output().slice(-2000)).toBe(0);
    // Closed with the server: nothing holds the port any more.
    await expect(fetch(`${base}/livez`)).rejects.toThrow();
  }, 120_000);
});
