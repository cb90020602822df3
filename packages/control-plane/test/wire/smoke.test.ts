import { CONTRACT_VERSION } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, query } from '../http.js';
import { startTestServer } from '../server.js';

describe('server smoke', () => {
  it('serves system.info, health and metrics on one port', async () => {
    await using server = await startTestServer();
    const info = await query<{ contractVersion: string; heartbeatIntervalMs: number }>(
      server.url,
      'system.info',
    );
    expect(info.status).toBe(200);
    expect(info.data.contractVersion).toBe(CONTRACT_VERSION);
    expect(info.data.heartbeatIntervalMs).toBe(15_000);
    expect((await fetch(`${server.url}/livez`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain(
      'tether_rpc_requests_total{procedure="system.info",code="ok",transport="http"} 1',
    );
  });

  it('a participant creates a session over HTTP; no token → auth.unauthenticated 401', async () => {
    await using server = await startTestServer();
    const created = await mutate<{ name: string }>(
      server.url,
      'session.create',
      { name: 'lab' },
      { token: server.adminToken },
    );
    expect(created.status).toBe(200);
    expect(created.data.name).toBe('lab');
    const anonymous = await mutate(server.url, 'session.create', { name: 'lab' });
    expect(anonymous.status).toBe(401);
    expect(errorCode(anonymous)).toBe('auth.unauthenticated');
  });
});
