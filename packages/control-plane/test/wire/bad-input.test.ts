/**
 * Bad input never hurts: each malformed request gets its typed error and status, and the
 * server keeps serving (a valid call succeeds after every bad one; nothing is written).
 */
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, query, type CallOptions } from '../http.js';
import { startTestServer } from '../server.js';
import { nodeOf, participant, sessionOf } from './actors.js';

describe('bad input', () => {
  it('a table of malformed requests, each answered with its typed error while the server keeps serving', async () => {
    await using server = await startTestServer({
      env: {
        TETHER_MAX_BODY_BYTES: String(1024 * 1024),
        TETHER_RATE_HEARTBEATS_PER_MINUTE: '100000',
      },
    });
    const owner = await participant(server);
    const session = await sessionOf(server, owner);
    const node = await nodeOf(server, owner);
    const asNode: CallOptions = { token: node.token };
    const attach = {
      sessionId: session,
      participantId: node.ownerParticipantId,
      nodeId: node.nodeId,
      nodeVersion: '1.0',
      capabilities: {},
      healthState: 'online',
    };
    const twoMegabytes = 'x'.repeat(2 * 1024 * 1024);

    const cases: {
      name: string;
      call: () => ReturnType<typeof mutate>;
      status: number;
      code: string;
      field?: string;
    }[] = [
      {
        name: 'wrong type',
        call: () => mutate(server.url, 'runtimenode.attach', { ...attach, healthState: 7 }, asNode),
        status: 400,
        code: 'request.invalid',
        field: 'healthState',
      },
      {
        name: 'unknown key',
        call: () => mutate(server.url, 'runtimenode.attach', { ...attach, admin: true }, asNode),
        status: 400,
        code: 'request.invalid',
        field: 'admin',
      },
      {
        name: 'missing field',
        call: () => mutate(server.url, 'runtimenode.heartbeat', { nodeId: node.nodeId }, asNode),
        status: 400,
        code: 'request.invalid',
        field: 'healthState',
      },
      {
        name: 'self-reported offline',
        call: () =>
          mutate(
            server.url,
            'runtimenode.heartbeat',
            { nodeId: node.nodeId, healthState: 'offline' },
            asNode,
          ),
        status: 400,
        code: 'request.invalid',
        field: 'healthState',
      },
      {
        name: 'invalid version 1.01',
        call: () =>
          mutate(server.url, 'runtimenode.attach', { ...attach, nodeVersion: '1.01' }, asNode),
        status: 400,
        code: 'request.invalid',
        field: 'nodeVersion',
      },
      {
        name: 'invalid version 1.2.3',
        call: () =>
          mutate(server.url, 'runtimenode.attach', { ...attach, nodeVersion: '1.2.3' }, asNode),
        status: 400,
        code: 'request.invalid',
        field: 'nodeVersion',
      },
      {
        name: 'invalid node id',
        call: () =>
          mutate(
            server.url,
            'runtimenode.heartbeat',
            { nodeId: ' spaces ', healthState: 'online' },
            asNode,
          ),
        status: 400,
        code: 'request.invalid',
        field: 'nodeId',
      },
      {
        name: 'node id too long',
        call: () =>
          mutate(
            server.url,
            'runtimenode.heartbeat',
            { nodeId: 'n'.repeat(257), healthState: 'online' },
            asNode,
          ),
        status: 400,
        code: 'request.invalid',
        field: 'nodeId',
      },
      {
        name: 'not a uuid',
        call: () =>
          mutate(server.url, 'runtimenode.attach', { ...attach, sessionId: 'nope' }, asNode),
        status: 400,
        code: 'request.invalid',
        field: 'sessionId',
      },
      {
        name: 'bad capability name',
        call: () =>
          mutate(
            server.url,
            'runtimenode.attach',
            { ...attach, capabilities: { 'Bad Name': {} } },
            asNode,
          ),
        status: 400,
        code: 'request.invalid',
        field: 'capabilities',
      },
      {
        name: 'non-finite metric',
        call: () =>
          mutate(
            server.url,
            'runtimenode.heartbeat',
            { nodeId: node.nodeId, healthState: 'online', metrics: { cpuPercent: -1 } },
            asNode,
          ),
        status: 400,
        code: 'request.invalid',
        field: 'metrics.cpuPercent',
      },
      {
        name: 'malformed JSON',
        call: () =>
          mutate(server.url, 'runtimenode.heartbeat', undefined, {
            ...asNode,
            rawBody: '{"nodeId": ',
          }),
        status: 400,
        code: 'request.malformed',
      },
      {
        name: 'not JSON at all',
        call: () =>
          mutate(server.url, 'runtimenode.heartbeat', undefined, { ...asNode, rawBody: 'hello' }),
        status: 400,
        code: 'request.malformed',
      },
      {
        name: '2 MB body',
        call: () =>
          mutate(
            server.url,
            'runtimenode.heartbeat',
            { nodeId: node.nodeId, healthState: 'online', pad: twoMegabytes },
            asNode,
          ),
        status: 413,
        code: 'request.too_large',
      },
      {
        name: 'unknown procedure',
        call: () => mutate(server.url, 'runtimenode.teleport', {}, asNode),
        status: 404,
        code: 'request.unknown_procedure',
      },
      {
        name: 'bad client-version header',
        call: () =>
          mutate(
            server.url,
            'runtimenode.heartbeat',
            { nodeId: node.nodeId, healthState: 'online' },
            { ...asNode, headers: { 'x-tether-client-version': 'v1' } },
          ),
        status: 400,
        code: 'request.invalid',
      },
      {
        name: 'garbage bearer token',
        call: () =>
          mutate(
            server.url,
            'runtimenode.heartbeat',
            { nodeId: node.nodeId, healthState: 'online' },
            { token: 'tnd_garbage' },
          ),
        status: 401,
        code: 'auth.unauthenticated',
      },
      {
        name: 'participant token on a node procedure',
        call: () =>
          mutate(
            server.url,
            'runtimenode.heartbeat',
            { nodeId: node.nodeId, healthState: 'online' },
            { token: owner.token },
          ),
        status: 403,
        code: 'auth.forbidden',
      },
      {
        name: 'a tampered cursor',
        call: () =>
          query(server.url, 'session.list', { cursor: 'bm90LWpzb24' }, { token: owner.token }),
        status: 400,
        code: 'request.invalid',
      },
      {
        name: 'limit out of range',
        call: () => query(server.url, 'session.list', { limit: 100000 }, { token: owner.token }),
        status: 400,
        code: 'request.invalid',
        field: 'limit',
      },
    ];

    for (const c of cases) {
      const result = await c.call();
      expect({ name: c.name, status: result.status, code: errorCode(result) }).toEqual({
        name: c.name,
        status: c.status,
        code: c.code,
      });
      expect(result.raw, c.name).not.toMatch(/at .*\.ts:\d+|stack/i);
      if (c.field) {
        const issues = (result.error?.data.tetherError.details?.issues ?? []) as {
          path: string;
          fields?: string[];
        }[];
        const paths = issues.flatMap((i) => [i.path, ...(i.fields ?? [])]);
        expect(
          paths.some((p) => p === c.field || p.startsWith(`${c.field}.`)),
          `${c.name}: ${paths.join(',')}`,
        ).toBe(true);
      }
      // Still serving after every bad request.
      const ok = await mutate(
        server.url,
        'runtimenode.heartbeat',
        { nodeId: node.nodeId, healthState: 'online' },
        asNode,
      );
      expect(ok.status, `server still serves after: ${c.name}`).toBe(200);
    }
    // Nothing was attached by any of the bad attach calls.
    const { rows } = await server.db.query(
      `SELECT 1 FROM runtime_node_attachments WHERE node_id = $1`,
      [node.nodeId],
    );
    expect(rows).toHaveLength(0);
  });

  it('a flood of bad credentials from one address is locked out with rate_limited, retryAfterMs on every refusal', async () => {
    await using server = await startTestServer({
      env: { TETHER_RATE_AUTH_FAILURES_PER_MINUTE: '5' },
    });
    const codes: string[] = [];
    const waits: unknown[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await mutate(
        server.url,
        'runtimenode.heartbeat',
        { nodeId: 'n1', healthState: 'online' },
        { token: `tnd_wrong${i}` },
      );
      codes.push(`${r.status}:${errorCode(r)}`);
      if (r.status === 429) waits.push(r.error?.data.tetherError.details?.retryAfterMs);
    }
    expect(codes.slice(0, 5)).toEqual(Array(5).fill('401:auth.unauthenticated'));
    expect(codes.slice(5)).toEqual(Array(3).fill('429:rate_limited'));
    expect(waits).toHaveLength(3);
    for (const wait of waits) expect(wait).toBeGreaterThan(0);
    // A valid credential from the same address is not punished for others' failures.
    const info = await query(server.url, 'system.info');
    expect(info.status).toBe(200);
  });

  it('a node beating far above its cadence is throttled with rate_limited', async () => {
    await using server = await startTestServer({
      env: { TETHER_RATE_HEARTBEATS_PER_MINUTE: '60' },
    });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const statuses: number[] = [];
    for (let i = 0; i < 14; i++) {
      const r = await mutate(
        server.url,
        'runtimenode.heartbeat',
        { nodeId: node.nodeId, healthState: 'online' },
        { token: node.token },
      );
      statuses.push(r.status);
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
    expect(statuses.slice(10)).toEqual(Array(4).fill(429));
  });
});
