/**
 * The WebSocket heartbeat fast path (src/server/ws-heartbeat.ts): a beat from an authenticated
 * node socket skips tRPC's call machinery but must be indistinguishable on the wire — the same
 * answer frame, the same errors, the same rate limit, the same metrics — and every beat that
 * would fail a procedure check must still be answered by the procedure itself.
 */
import { describe, expect, it } from 'vitest';
import { metricSample, mutate } from '../http.js';
import { rawNodeSocket, type RawNodeSocket } from '../raw-ws.js';
import { startTestServer, type TestServer } from '../server.js';
import { eventually } from '../eventually.js';
import { nodeOf, participant } from './actors.js';

interface Frame {
  id: number;
  result?: { type: string; data: unknown };
  error?: {
    message: string;
    code: number;
    data: {
      code: string;
      httpStatus: number;
      path?: string;
      tetherError: { code: string; details?: { retryAfterMs?: number } };
    };
  };
}

const metric = (server: TestServer, series: string): Promise<number> =>
  metricSample(server.url, series);

const FAST = 'tether_ws_heartbeat_fast_path_total';

/**
 * A node socket whose authentication has completed: calls sent before that wait inside tRPC for
 * the context (and so never take the fast path), so the tests make one ordinary call first.
 */
async function readySocket(server: TestServer, token: string): Promise<RawNodeSocket> {
  const socket = await rawNodeSocket(server.wsUrl, token);
  await socket.call('query', 'system.info', undefined);
  return socket;
}
const series = (code: string): string =>
  `tether_rpc_requests_total{procedure="runtimenode.heartbeat",code="${code}",transport="ws"}`;

describe('WebSocket heartbeat fast path', () => {
  it('a beat from an authenticated node socket is answered with the tRPC frame, written, and counted', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const socket = await readySocket(server, node.token);
    try {
      const answer = (await socket.call('mutation', 'runtimenode.heartbeat', {
        nodeId: node.nodeId,
        healthState: 'degraded',
        metrics: { cpuPercent: 50 },
      })) as Frame;
      expect(answer).toEqual({ id: 2, result: { type: 'data', data: null } });
      const { rows } = await server.db.query<{ health_state: string; beat: boolean }>(
        `SELECT health_state, last_heartbeat_at IS NOT NULL AS beat, metrics
           FROM runtime_node_presence WHERE node_id = $1`,
        [node.nodeId],
      );
      expect(rows[0]).toMatchObject({
        health_state: 'degraded',
        beat: true,
        metrics: { cpuPercent: 50 },
      });
      expect(await metric(server, FAST)).toBe(1);
      expect(await metric(server, series('ok'))).toBe(1);
    } finally {
      await socket.close();
    }
  });

  it('beats that would fail a check are answered by the procedure, with the same error as over HTTP', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const other = await nodeOf(server, owner);
    const socket = await readySocket(server, node.token);
    const participantSocket = await readySocket(server, owner.token);
    try {
      const cases: { input: unknown; code: string }[] = [
        { input: { nodeId: other.nodeId, healthState: 'online' }, code: 'auth.principal_mismatch' },
        { input: { nodeId: node.nodeId, healthState: 'offline' }, code: 'request.invalid' },
        {
          input: { nodeId: node.nodeId, healthState: 'online', extra: 1 },
          code: 'request.invalid',
        },
        { input: 'not an object', code: 'request.invalid' },
      ];
      for (const { input, code } of cases) {
        const ws = (await socket.call('mutation', 'runtimenode.heartbeat', input)) as Frame;
        const http = await mutate(server.url, 'runtimenode.heartbeat', input, {
          token: node.token,
        });
        expect(ws.error?.data.tetherError.code, JSON.stringify(input)).toBe(code);
        expect(http.error?.data.tetherError, JSON.stringify(input)).toEqual(
          ws.error?.data.tetherError,
        );
        expect(ws.error?.data.httpStatus).toBe(http.status);
      }
      // A participant socket never takes the node fast path.
      const forbidden = (await participantSocket.call('mutation', 'runtimenode.heartbeat', {
        nodeId: node.nodeId,
        healthState: 'online',
      })) as Frame;
      expect(forbidden.error?.data.tetherError.code).toBe('auth.forbidden');
      expect(await metric(server, FAST)).toBe(0);
    } finally {
      await socket.close();
      await participantSocket.close();
    }
  });

  it('the per-node rate limit applies: beats beyond the burst are refused with rate_limited', async () => {
    // 1 per minute refills nothing during the test: the burst (10) is all there is.
    await using server = await startTestServer({
      env: { TETHER_RATE_HEARTBEATS_PER_MINUTE: '1' },
    });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const socket = await readySocket(server, node.token);
    try {
      const answers = (await Promise.all(
        Array.from({ length: 12 }, () =>
          socket.call('mutation', 'runtimenode.heartbeat', {
            nodeId: node.nodeId,
            healthState: 'online',
          }),
        ),
      )) as Frame[];
      const codes = answers.map((a) => a.error?.data.tetherError.code ?? 'ok');
      expect(codes.filter((c) => c === 'ok')).toHaveLength(10);
      expect(codes.filter((c) => c === 'rate_limited')).toHaveLength(2);
      expect(await metric(server, FAST)).toBe(10);
      expect(await metric(server, series('rate_limited'))).toBe(2);
    } finally {
      await socket.close();
    }
  });

  it("a failure inside the service is answered in the procedure's error shape", async () => {
    // Revoked straight in the database, with revalidation far away: the socket stays registered
    // (the fast path is taken) and the write itself refuses the revoked identity.
    await using server = await startTestServer({ env: { TETHER_AUTH_CACHE_TTL_MS: '600000' } });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const socket = await readySocket(server, node.token);
    try {
      const first = (await socket.call('mutation', 'runtimenode.heartbeat', {
        nodeId: node.nodeId,
        healthState: 'online',
      })) as Frame;
      expect(first.result).toEqual({ type: 'data', data: null });
      await server.db.query(
        `UPDATE nodes SET status = 'revoked', revoked_at = now() WHERE node_id = $1`,
        [node.nodeId],
      );
      const refused = (await socket.call('mutation', 'runtimenode.heartbeat', {
        nodeId: node.nodeId,
        healthState: 'online',
      })) as Frame;
      expect(refused).toEqual({
        id: 3,
        error: {
          message: 'The node identity is unknown or revoked.',
          code: -32001,
          data: {
            code: 'UNAUTHORIZED',
            httpStatus: 401,
            path: 'runtimenode.heartbeat',
            tetherError: {
              code: 'auth.unauthenticated',
              message: 'The node identity is unknown or revoked.',
            },
          },
        },
      });
      expect(await metric(server, FAST)).toBe(2);
      expect(await metric(server, series('auth.unauthenticated'))).toBe(1);
    } finally {
      await socket.close();
    }
  });

  it('a full heartbeat queue refuses beats with system.unavailable and retryAfterMs; the queued ones are written', async () => {
    // A queue of one, and the node's presence row locked by another transaction: the batch
    // writers wait on the lock, the queue fills, and the beats beyond it are refused at once.
    await using server = await startTestServer({ env: { TETHER_HEARTBEAT_QUEUE_MAX: '1' } });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const socket = await readySocket(server, node.token);
    const input = { nodeId: node.nodeId, healthState: 'online' };
    try {
      const first = (await socket.call('mutation', 'runtimenode.heartbeat', input)) as Frame;
      expect(first.result).toEqual({ type: 'data', data: null });
      const answered: Frame[] = [];
      let calls: Promise<unknown>[] = [];
      await server.db.tx(async (sql) => {
        await sql.query(`SELECT 1 FROM runtime_node_presence WHERE node_id = $1 FOR UPDATE`, [
          node.nodeId,
        ]);
        calls = Array.from({ length: 4 }, () =>
          socket
            .call('mutation', 'runtimenode.heartbeat', input)
            .then((frame) => answered.push(frame as Frame)),
        );
        // Refusals do not wait for the lock; the beats the queue took do.
        await eventually(
          () => Promise.resolve(answered.length),
          (n) => n >= 1,
        );
        expect(answered.every((a) => a.error !== undefined)).toBe(true);
      });
      await Promise.all(calls);
      const refused = answered.filter((a) => a.error);
      const accepted = answered.filter((a) => a.result);
      expect(refused.length).toBeGreaterThanOrEqual(1);
      expect(accepted.length).toBeGreaterThanOrEqual(1);
      expect(refused.length + accepted.length).toBe(4);
      for (const r of refused) {
        const retryAfterMs = r.error?.data.tetherError.details?.retryAfterMs;
        expect(retryAfterMs).toBeGreaterThanOrEqual(500);
        expect(retryAfterMs).toBeLessThanOrEqual(1_500);
        expect(r.error).toEqual({
          message: 'Heartbeats are queued beyond capacity; retry.',
          code: -32603,
          data: {
            code: 'SERVICE_UNAVAILABLE',
            httpStatus: 503,
            path: 'runtimenode.heartbeat',
            tetherError: {
              code: 'system.unavailable',
              message: 'Heartbeats are queued beyond capacity; retry.',
              details: { retryAfterMs },
            },
          },
        });
      }
      expect(await metric(server, series('system.unavailable'))).toBe(refused.length);
      expect(await metric(server, series('ok'))).toBe(1 + accepted.length);
      // The server keeps serving: the next beat is written.
      const after = (await socket.call('mutation', 'runtimenode.heartbeat', input)) as Frame;
      expect(after.result).toEqual({ type: 'data', data: null });
    } finally {
      await socket.close();
    }
  });
});
