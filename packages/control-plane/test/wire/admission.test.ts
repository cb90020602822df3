/**
 * The admission limit on new WebSocket sessions over real HTTP: upgrades over the limit are
 * answered 503 with `Retry-After` and the typed `system.unavailable` error carrying
 * `retryAfterMs`, each refused client gets its own slot, the refusals are counted in /metrics,
 * and the server goes on serving (a later upgrade is admitted), also when refused clients reset
 * their connections.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { spawnServer } from '../process-server.js';
import { startTestServer } from '../server.js';

type Outcome =
  | { admitted: true }
  | { admitted: false; status: number; retryAfter: string | undefined; body: string };

/** One WebSocket opening handshake by hand: did the server upgrade, or what did it answer? */
function upgrade(url: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/trpc?connectionParams=1`, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve({ admitted: true });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          admitted: false,
          status: res.statusCode ?? 0,
          retryAfter: res.headers['retry-after'],
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * An upgrade request on a bare TCP socket that is reset (RST, not FIN) as soon as the first
 * bytes of the answer arrive — or right after sending, when `before` is set.
 */
function upgradeThenReset(url: string, before = false): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `GET /trpc?connectionParams=1 HTTP/1.1\r\nHost: ${hostname}\r\nConnection: Upgrade\r\n` +
          `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      );
      if (before) {
        socket.resetAndDestroy();
        resolve('');
      }
    });
    socket.once('data', (data: Buffer) => {
      socket.resetAndDestroy();
      resolve(data.toString('utf8').split('\r\n')[0] ?? '');
    });
    socket.on('error', () => resolve(''));
  });
}

async function refusedTotal(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^tether_ws_admission_refused_total (\d+)/m.exec(text)?.[1] ?? NaN);
}

describe('WebSocket admission limit', () => {
  it('over the limit: 503, Retry-After and system.unavailable with retryAfterMs, one slot each; then admitted again', async () => {
    // 1 per second, burst 1: of a simultaneous herd, one is admitted at once.
    await using server = await startTestServer({ env: { TETHER_WS_ADMIT_PER_SECOND: '1' } });
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => upgrade(server.url)));
    const refused = outcomes.filter((o) => !o.admitted);
    expect(outcomes.filter((o) => o.admitted).length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThanOrEqual(4);
    const waits: number[] = [];
    for (const o of refused) {
      expect(o.status).toBe(503);
      const body = JSON.parse(o.body) as {
        error: {
          data: {
            httpStatus: number;
            tetherError: { code: string; details: { retryAfterMs: number } };
          };
        };
      };
      expect(body.error.data.httpStatus).toBe(503);
      expect(body.error.data.tetherError.code).toBe('system.unavailable');
      const ms = body.error.data.tetherError.details.retryAfterMs;
      expect(ms).toBeGreaterThan(0);
      // Retry-After is the same wait in whole seconds, rounded up.
      expect(Number(o.retryAfter)).toBe(Math.max(1, Math.ceil(ms / 1_000)));
      waits.push(ms);
    }
    // Distinct slots, about one admission interval (1 s) apart.
    const sorted = [...waits].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) {
      expect(sorted[i]! - sorted[i - 1]!).toBeGreaterThanOrEqual(900);
    }
    expect(await refusedTotal(server.url)).toBe(refused.length);
    // The server goes on serving: plain HTTP at once, and an upgrade once a slot is free.
    expect((await fetch(`${server.url}/livez`)).status).toBe(200);
    await eventually(
      () => upgrade(server.url),
      (o) => o.admitted,
      15_000,
    );
  });

  it('clients that reset their connection while being refused do not hurt the server (a real process)', async () => {
    const database = await createTestDatabase();
    const server = await spawnServer({
      DATABASE_URL: database.url,
      TETHER_WS_ADMIT_PER_SECOND: '1',
    });
    try {
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) => upgradeThenReset(server.url, i % 2 === 0)),
      );
      // Some were refused with the admission answer before they reset.
      expect(answers.filter((a) => a.startsWith('HTTP/1.1 503')).length).toBeGreaterThan(0);
      expect(await refusedTotal(server.url)).toBeGreaterThan(0);
      // The process is still up, serving, and admitting once a slot is free.
      expect((await fetch(`${server.url}/livez`)).status).toBe(200);
      await eventually(
        () => upgrade(server.url),
        (o) => o.admitted,
        15_000,
      );
      expect(server.child.exitCode, server.output().slice(-2000)).toBeNull();
    } finally {
      server.child.kill('SIGKILL');
      await server.exited;
      await database.drop();
    }
  });
});
