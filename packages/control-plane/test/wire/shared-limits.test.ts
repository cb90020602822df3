/**
 * The per-address limits hold across replicas: two servers on one PostgreSQL share one budget of
 * failed authentications (with lockout) and one of public calls, and every refusal carries
 * `retryAfterMs`. A valid credential from a locked-out address is still served.
 */
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, query, type CallResult } from '../http.js';
import { startTestServer } from '../server.js';

const outcome = (r: CallResult): string => `${r.status}:${errorCode(r) ?? 'ok'}`;

describe('limits shared by replicas', () => {
  it('failed authentications spread over two replicas draw on one budget; every 429 has retryAfterMs; a valid token still works', async () => {
    const env = { TETHER_RATE_AUTH_FAILURES_PER_MINUTE: '6' };
    await using a = await startTestServer({ env });
    await using b = await startTestServer({ env, databaseUrl: a.config.databaseUrl! });
    const results: CallResult[] = [];
    for (let i = 0; i < 12; i++) {
      const replica = i % 2 === 0 ? a : b;
      results.push(await query(replica.url, 'session.list', {}, { token: `tpt_wrong-${i}` }));
    }
    expect(results.slice(0, 6).map(outcome)).toEqual(Array(6).fill('401:auth.unauthenticated'));
    expect(results.slice(6).map(outcome)).toEqual(Array(6).fill('429:rate_limited'));
    for (const refused of results.slice(6)) {
      expect(refused.error?.data.tetherError.details?.retryAfterMs).toBeGreaterThan(0);
    }
    // Locked out as an address, not as a credential: a valid token is served on both replicas.
    for (const replica of [a, b]) {
      const ok = await query(replica.url, 'session.list', {}, { token: a.adminToken });
      expect(ok.status).toBe(200);
    }
  });

  it('public calls spread over two replicas draw on one budget; every 429 has retryAfterMs', async () => {
    const env = { TETHER_RATE_PUBLIC_PER_MINUTE: '4' };
    await using a = await startTestServer({ env });
    await using b = await startTestServer({ env, databaseUrl: a.config.databaseUrl! });
    const results: CallResult[] = [];
    for (let i = 0; i < 8; i++) {
      const replica = i % 2 === 0 ? a : b;
      results.push(
        await mutate(replica.url, 'pairing.request', { name: `dev-${i}`, nodeType: 'desktop' }),
      );
    }
    expect(results.slice(0, 4).map(outcome)).toEqual(Array(4).fill('200:ok'));
    expect(results.slice(4).map(outcome)).toEqual(Array(4).fill('429:rate_limited'));
    for (const refused of results.slice(4)) {
      expect(refused.error?.data.tetherError.details?.retryAfterMs).toBeGreaterThan(0);
    }
    // Nothing was created for the refused calls.
    const { rows } = await a.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pairing_requests`,
    );
    expect(rows[0]!.n).toBe(4);
  });
});
