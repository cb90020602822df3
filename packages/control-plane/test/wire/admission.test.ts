/**
 * Admission of new WebSocket sessions over real HTTP (server/admission.ts). Under real pressure —
 * a pool of one connection held busy, so the handshakes in flight wait for it — and with no fixed
 * cap configured, upgrades are answered 503 with `Retry-After` and the typed `system.unavailable`
 * error carrying `retryAfterMs`, each refused client in its own slot; once the pressure is gone
 * every client connects by following the times it was given. The refusals are counted in
 * /metrics, and the server goes on serving, also when refused clients reset their connections.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { CONTRACT_VERSION } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { spawnServer } from '../process-server.js';
import { startTestServer } from '../server.js';
import { upgrade } from '../upgrade.js';
import { DRAINING_RETRY_MIN_MS, DRAINING_RETRY_SPREAD_MS } from '../../src/server/ws-upgrade.js';

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

/** Handshakes held in flight by the busy pool: above the adaptive limit's floor of 32. */
const IN_FLIGHT = 40;

describe('WebSocket admission', () => {
  it('under pressure (pool held busy, no fixed cap): 503 + retryAfterMs; when it subsides every client connects by following retryAfterMs', async () => {
    await using server = await startTestServer({ env: { TETHER_DB_POOL_MAX: '1' } });
    // Sockets whose handshake is in flight: admitted, connectionParams not sent yet. More than
    // the adaptive limit's floor (32); nothing presses yet, so none is refused.
    const waiting = await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        const ws = new WebSocket(`${server.wsUrl}?connectionParams=1`);
        await new Promise<void>((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
        return ws;
      }),
    );
    // Hold the pool's only connection; then every handshake's credential lookup waits for it.
    let release!: () => void;
    const held = server.db.withClient(() => new Promise<void>((resolve) => (release = resolve)));
    try {
      await eventually(
        () => Promise.resolve(server.admission.snapshot()),
        (s) => s.inFlight === IN_FLIGHT,
      );
      for (const ws of waiting) {
        ws.send(
          JSON.stringify({
            method: 'connectionParams',
            data: { token: server.adminToken, clientVersion: CONTRACT_VERSION },
          }),
        );
      }
      // The controller sees the pool's waiters and cuts its limit to what is in flight.
      await eventually(
        () => Promise.resolve(server.admission.snapshot()),
        (s) => s.poolWaiting > 0 && s.inFlight === IN_FLIGHT && s.limit <= s.inFlight,
      );

      const outcomes = await Promise.all(Array.from({ length: 8 }, () => upgrade(server.url)));
      const waits: number[] = [];
      for (const o of outcomes) {
        expect(o.admitted).toBe(false);
        if (o.admitted) continue;
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
      // How the slots spread a herd is the controller's unit test (test/server/admission.test.ts);
      // here each wait is taken as the client sees it, relative to its own answer.

      // The pressure subsides: the waiting handshakes complete, and each refused client, coming
      // back when it was told (and again if told again), is admitted.
      release();
      await held;
      const follow = async (firstWaitMs: number): Promise<number> => {
        let wait = firstWaitMs;
        for (let attempt = 1; ; attempt++) {
          await new Promise((resolve) => setTimeout(resolve, wait));
          const o = await upgrade(server.url);
          if (o.admitted) return attempt;
          expect(o.status).toBe(503);
          wait = (
            JSON.parse(o.body) as {
              error: { data: { tetherError: { details: { retryAfterMs: number } } } };
            }
          ).error.data.tetherError.details.retryAfterMs;
        }
      };
      const attempts = await Promise.all(waits.map(follow));
      expect(attempts).toHaveLength(8);
      await eventually(
        () => Promise.resolve(server.admission.snapshot().inFlight),
        (n) => n === 0,
      );
      expect(await refusedTotal(server.url)).toBeGreaterThanOrEqual(8);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text).toMatch(/^tether_ws_admission_limit \d+/m);
      expect(text).toMatch(/^tether_ws_handshakes_in_flight 0/m);
      expect(text).toMatch(/^tether_ws_admission_loop_delay_seconds [\d.e-]+/m);
      for (const ws of waiting) ws.terminate();
    } finally {
      // Never leave the pool held: the server could not stop.
      release();
      await held;
    }
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

  it('while the server drains (a stop), an upgrade is told when to come back: 503 system.unavailable with retryAfterMs 1–3 s', async () => {
    await using server = await startTestServer();
    expect(await upgrade(server.url)).toEqual({ admitted: true });
    server.host.setDraining();
    const outcome = await upgrade(server.url);
    if (outcome.admitted) throw new Error('upgraded while draining');
    expect(outcome.status).toBe(503);
    const body = JSON.parse(outcome.body) as {
      error: { data: { tetherError: { code: string; details: { retryAfterMs: number } } } };
    };
    const { code, details } = body.error.data.tetherError;
    expect(code).toBe('system.unavailable');
    expect(details.retryAfterMs).toBeGreaterThanOrEqual(DRAINING_RETRY_MIN_MS);
    expect(details.retryAfterMs).toBeLessThan(DRAINING_RETRY_MIN_MS + DRAINING_RETRY_SPREAD_MS);
    expect(outcome.retryAfter).toBe(String(Math.ceil(details.retryAfterMs / 1_000)));
  });
});
