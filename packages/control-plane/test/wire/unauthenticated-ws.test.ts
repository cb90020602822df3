/**
 * Unauthenticated WebSockets are not kept forever: no connectionParams within
 * TETHER_WS_AUTH_DEADLINE_MS → closed 4408; no principal and no call for
 * TETHER_WS_ANONYMOUS_IDLE_MS → closed 4408; at most TETHER_WS_MAX_UNAUTHENTICATED_PER_PEER
 * unauthenticated sockets per address (further upgrades: 429 rate_limited with retryAfterMs).
 * Authenticated sockets are subject to none of these.
 */
import { CONTRACT_VERSION, WS_CLOSE } from '@tether/contracts';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { metricSample } from '../http.js';
import { rawNodeSocket, rawSocket, type RawSocket } from '../raw-ws.js';
import { startTestServer } from '../server.js';
import { nodeOf, participant, wsClient } from './actors.js';

function open(socket: RawSocket): Extract<RawSocket, { kind: 'open' }> {
  if (socket.kind !== 'open') throw new Error(`upgrade refused: ${socket.status} ${socket.body}`);
  return socket;
}

describe('unauthenticated WebSockets', () => {
  it('a socket that never sends connectionParams is closed with 4408 after the deadline; an authenticated one stays', async () => {
    await using server = await startTestServer({
      env: { TETHER_WS_AUTH_DEADLINE_MS: '300', TETHER_WS_ANONYMOUS_IDLE_MS: '600000' },
    });
    const node = await nodeOf(server, await participant(server));
    const authenticated = await rawNodeSocket(server.wsUrl, node.token);
    const silent = open(await rawSocket(server.wsUrl));
    try {
      const closed = await silent.closed;
      expect(closed.code).toBe(WS_CLOSE.UNAUTHENTICATED_TIMEOUT);
      expect(closed.reason).toMatch(/connectionParams/);
      // Opened before the silent one, past its deadline, still served.
      expect(authenticated.ws.readyState).toBe(WebSocket.OPEN);
      const info = (await authenticated.call('query', 'system.info', undefined)) as {
        result?: { data: { contractVersion: string } };
      };
      expect(info.result?.data.contractVersion).toBe(CONTRACT_VERSION);
      expect(
        await metricSample(
          server.url,
          'tether_ws_unauthenticated_closed_total{reason="connection_params"}',
        ),
      ).toBe(1);
    } finally {
      await authenticated.close();
      await silent.close();
    }
  });

  it('a socket without a credential may call public procedures, and is closed with 4408 once idle', async () => {
    await using server = await startTestServer({
      env: { TETHER_WS_AUTH_DEADLINE_MS: '600000', TETHER_WS_ANONYMOUS_IDLE_MS: '500' },
    });
    const member = await participant(server);
    const authenticated = wsClient(server, { token: member.token });
    const anonymous = wsClient(server, {});
    try {
      await expect(authenticated.client.session.list.query({})).resolves.toHaveProperty('items');
      expect((await anonymous.client.system.info.query()).contractVersion).toBe(CONTRACT_VERSION);
      expect(await anonymous.closed).toBe(WS_CLOSE.UNAUTHENTICATED_TIMEOUT);
      // The participant's socket, idle as long, is still served.
      await expect(authenticated.client.session.list.query({})).resolves.toHaveProperty('items');
      expect(
        await metricSample(
          server.url,
          'tether_ws_unauthenticated_closed_total{reason="anonymous_idle"}',
        ),
      ).toBe(1);
    } finally {
      await authenticated.close();
      await anonymous.close();
    }
  });

  it('beyond TETHER_WS_MAX_UNAUTHENTICATED_PER_PEER an upgrade is refused 429 rate_limited with retryAfterMs; authenticated sockets do not count', async () => {
    await using server = await startTestServer({
      env: {
        TETHER_WS_MAX_UNAUTHENTICATED_PER_PEER: '3',
        TETHER_WS_AUTH_DEADLINE_MS: '600000',
        TETHER_WS_ANONYMOUS_IDLE_MS: '600000',
      },
    });
    const node = await nodeOf(server, await participant(server));
    const idle: Extract<RawSocket, { kind: 'open' }>[] = [];
    try {
      for (let i = 0; i < 3; i++) idle.push(open(await rawSocket(server.wsUrl)));
      const refused = await rawSocket(server.wsUrl);
      if (refused.kind !== 'refused') throw new Error('the fourth upgrade was admitted');
      expect(refused.status).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      const body = JSON.parse(refused.body) as {
        error: { data: { tetherError: { code: string; details: { retryAfterMs: number } } } };
      };
      expect(body.error.data.tetherError.code).toBe('rate_limited');
      expect(body.error.data.tetherError.details.retryAfterMs).toBeGreaterThan(0);

      // One idle socket goes: a node may connect, and once authenticated it leaves the count.
      await idle.shift()!.close();
      const authenticated = await eventually(
        () => rawNodeSocket(server.wsUrl, node.token).catch(() => null),
        (socket) => socket !== null,
      );
      try {
        await authenticated!.call('query', 'system.info', undefined);
        idle.push(open(await rawSocket(server.wsUrl)));
        expect((await rawSocket(server.wsUrl)).kind).toBe('refused');
        expect(authenticated!.ws.readyState).toBe(WebSocket.OPEN);
      } finally {
        await authenticated!.close();
      }
      expect(
        await metricSample(
          server.url,
          'tether_transport_refusals_total{reason="unauthenticated_per_peer"}',
        ),
      ).toBeGreaterThanOrEqual(2);
    } finally {
      for (const socket of idle) await socket.close();
    }
  });
});
