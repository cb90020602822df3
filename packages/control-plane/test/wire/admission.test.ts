/**
 * The admission limit on new WebSocket sessions over real HTTP: upgrades over the limit are
 * answered 503 with `Retry-After` and the typed `system.unavailable` error carrying
 * `retryAfterMs`, each refused client gets its own slot, the refusals are counted in /metrics,
 * and the server goes on serving (a later upgrade is admitted).
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
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
});
