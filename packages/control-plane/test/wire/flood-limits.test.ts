/**
 * Floods through the real wire: batches over TETHER_MAX_BATCH_CALLS are refused whole before any
 * call runs (HTTP `?batch=1` and WebSocket array frames), a WebSocket's calls in flight are
 * capped, and one principal's mutations are rate limited (heartbeats keep their own limit).
 */
import { TRPCClientError } from '@trpc/client';
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { errorCode, metricSample, mutate, mutateBatch, query } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, wsClient } from './actors.js';

interface WireError {
  code: string | undefined;
  httpStatus: number | undefined;
  details: Record<string, unknown> | undefined;
}

function wireError(error: unknown): WireError {
  const data =
    error instanceof TRPCClientError
      ? (error.data as
          | {
              httpStatus?: number;
              tetherError?: { code: string; details?: Record<string, unknown> };
            }
          | undefined)
      : undefined;
  return {
    code: data?.tetherError?.code,
    httpStatus: data?.httpStatus,
    details: data?.tetherError?.details,
  };
}

const sessionsCreatedBy = async (server: TestServer, participantId: string): Promise<number> =>
  (
    await server.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM sessions WHERE created_by = $1`,
      [participantId],
    )
  ).rows[0]!.n;

describe('batch size', () => {
  it('an HTTP batch over TETHER_MAX_BATCH_CALLS is refused whole with request.batch_too_large and creates nothing', async () => {
    await using server = await startTestServer({
      env: { TETHER_MAX_BATCH_CALLS: '5', TETHER_RATE_MUTATIONS_PER_MINUTE: '100000' },
    });
    const member = await participant(server);
    const creates = (n: number, tag: string) =>
      Array.from({ length: n }, (_, i) => ({
        path: 'session.create',
        input: { name: `${tag}-${i}` },
      }));

    const refused = await mutateBatch(server.url, creates(6, 'over'), { token: member.token });
    expect(refused.status).toBe(413);
    expect(errorCode(refused)).toBe('request.batch_too_large');
    expect(refused.error?.data.tetherError.details).toEqual({ calls: 6, maxCalls: 5 });
    expect(await sessionsCreatedBy(server, member.participantId)).toBe(0);

    // At the limit the batch is served call by call.
    const served = await mutateBatch(server.url, creates(5, 'at'), { token: member.token });
    expect(served.items.map((item) => item.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await sessionsCreatedBy(server, member.participantId)).toBe(5);
    expect(await metricSample(server.url, 'tether_transport_refusals_total{reason="batch"}')).toBe(
      1,
    );
  });

  it('a WebSocket frame with more calls than TETHER_MAX_BATCH_CALLS: every call is answered request.batch_too_large, none runs, the socket serves on', async () => {
    await using server = await startTestServer({
      env: { TETHER_MAX_BATCH_CALLS: '5', TETHER_RATE_MUTATIONS_PER_MINUTE: '100000' },
    });
    const member = await participant(server);
    const ws = wsClient(server, { token: member.token });
    try {
      await ws.opened;
      // tRPC's WebSocket client sends the calls queued in one tick as one array frame.
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => ws.client.session.create.mutate({ name: `ws-${i}` })),
      );
      expect(outcomes.map((o) => o.status)).toEqual(Array(6).fill('rejected'));
      for (const outcome of outcomes) {
        const error = wireError((outcome as PromiseRejectedResult).reason);
        expect(error).toEqual({
          code: 'request.batch_too_large',
          httpStatus: 413,
          details: { calls: 6, maxCalls: 5 },
        });
      }
      expect(await sessionsCreatedBy(server, member.participantId)).toBe(0);

      const served = await Promise.all(
        Array.from({ length: 5 }, (_, i) => ws.client.session.create.mutate({ name: `ok-${i}` })),
      );
      expect(served).toHaveLength(5);
      expect(await sessionsCreatedBy(server, member.participantId)).toBe(5);
    } finally {
      await ws.close();
    }
  });

  it('a WebSocket frame more than four times over TETHER_MAX_BATCH_CALLS closes the socket with 1009 (message too big); none of its calls runs', async () => {
    await using server = await startTestServer({
      env: { TETHER_MAX_BATCH_CALLS: '5', TETHER_RATE_MUTATIONS_PER_MINUTE: '100000' },
    });
    const member = await participant(server);
    const ws = wsClient(server, { token: member.token });
    try {
      await ws.opened;
      const outcomes = await Promise.allSettled(
        Array.from({ length: 21 }, (_, i) => ws.client.session.create.mutate({ name: `big-${i}` })),
      );
      expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
      expect(await ws.closed).toBe(1009);
      expect(await sessionsCreatedBy(server, member.participantId)).toBe(0);
    } finally {
      await ws.close();
    }
  });
});

describe('calls in flight per WebSocket', () => {
  it('beyond TETHER_WS_MAX_IN_FLIGHT a call is refused rate_limited with retryAfterMs; a slot frees when a call ends', async () => {
    await using server = await startTestServer({ env: { TETHER_WS_MAX_IN_FLIGHT: '2' } });
    const ws = wsClient(server, { token: server.adminToken });
    const stops: (() => void)[] = [];
    try {
      // Two live subscriptions hold both slots until they stop.
      for (let i = 0; i < 2; i++) {
        await new Promise<void>((resolve, reject) => {
          const sub = ws.client.fleet.events.subscribe(
            {},
            { onStarted: () => resolve(), onError: reject, onData: () => undefined },
          );
          stops.push(() => sub.unsubscribe());
        });
      }
      const refused = await ws.client.system.info.query().catch((e: unknown) => e);
      const error = wireError(refused);
      expect(error.code).toBe('rate_limited');
      expect(error.httpStatus).toBe(429);
      expect(error.details).toMatchObject({ maxInFlight: 2 });
      expect(error.details?.retryAfterMs).toBeGreaterThan(0);

      stops.pop()!();
      // The stop is processed by the server asynchronously: once it is, the call goes through.
      const info = await eventually(
        () => ws.client.system.info.query().catch((e: unknown) => wireError(e)),
        (value) => 'contractVersion' in value,
      );
      expect(info).toHaveProperty('contractVersion');
      expect(
        await metricSample(server.url, 'tether_transport_refusals_total{reason="in_flight"}'),
      ).toBeGreaterThanOrEqual(1);
    } finally {
      for (const stop of stops) stop();
      await ws.close();
    }
  });
});

describe('mutations per principal', () => {
  it("one participant's mutations beyond TETHER_RATE_MUTATIONS_PER_MINUTE get rate_limited with retryAfterMs, over HTTP and WebSocket alike; others, queries and heartbeats are not affected", async () => {
    await using server = await startTestServer({
      // 60 per minute: a burst of 10.
      env: { TETHER_RATE_MUTATIONS_PER_MINUTE: '60', TETHER_RATE_HEARTBEATS_PER_MINUTE: '60000' },
    });
    const [a, b] = [await participant(server), await participant(server)];
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await mutate(server.url, 'session.create', { name: `a${i}` }, { token: a.token });
      statuses.push(r.status);
    }
    expect(statuses).toEqual(Array(10).fill(200));
    const limited = await mutate(server.url, 'session.create', { name: 'a10' }, { token: a.token });
    expect(limited.status).toBe(429);
    expect(errorCode(limited)).toBe('rate_limited');
    expect(limited.error?.data.tetherError.details?.retryAfterMs).toBeGreaterThan(0);

    // The same budget over a WebSocket.
    const ws = wsClient(server, { token: a.token });
    try {
      const error = wireError(
        await ws.client.session.create.mutate({ name: 'a-ws' }).catch((e: unknown) => e),
      );
      expect(error.code).toBe('rate_limited');
      expect(error.details?.retryAfterMs).toBeGreaterThan(0);
      // Queries are not counted.
      await expect(ws.client.session.list.query({})).resolves.toHaveProperty('items');
    } finally {
      await ws.close();
    }
    expect(await sessionsCreatedBy(server, a.participantId)).toBe(10);

    // Another participant has a budget of its own.
    const other = await mutate(server.url, 'session.create', { name: 'b0' }, { token: b.token });
    expect(other.status).toBe(200);

    // A node's heartbeats draw on the heartbeat limit, not on its mutation budget.
    const node = await nodeOf(server, b);
    const beats: number[] = [];
    for (let i = 0; i < 15; i++) {
      const r = await mutate(
        server.url,
        'runtimenode.heartbeat',
        { nodeId: node.nodeId, healthState: 'online' },
        { token: node.token },
      );
      beats.push(r.status);
    }
    expect(beats).toEqual(Array(15).fill(200));
    expect((await query(server.url, 'system.info')).status).toBe(200);
  });
});
