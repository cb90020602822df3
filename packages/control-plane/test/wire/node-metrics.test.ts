/**
 * Heartbeat metrics through the wire: `node.metrics` returns the beats' values in order, bounded
 * by the ring, filtered by `since`; the node view (get, list, findOnlineWithCapability) and
 * roster rows carry the latest metrics and when they were reported; visibility is node.get's.
 */
import {
  CONTRACT_VERSION,
  type NodeMetricsOutput,
  type NodeView,
  type RosterOutput,
} from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, query } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, sessionOf, wsClient, type NodeActor } from './actors.js';

// Every beat its own sample (1 µs buckets), a ring of 5; the per-node beat throttle out of the way.
const ENV = {
  TETHER_METRICS_SAMPLE_INTERVAL_MS: '0.001',
  TETHER_METRICS_HISTORY_SAMPLES: '5',
  TETHER_RATE_HEARTBEATS_PER_MINUTE: '6000',
};

async function beat(server: TestServer, node: NodeActor, cpuPercent: number): Promise<void> {
  const result = await mutate(
    server.url,
    'runtimenode.heartbeat',
    {
      nodeId: node.nodeId,
      healthState: 'online',
      metrics: { cpuPercent, memoryUsedBytes: cpuPercent * 1e6, gauges: { jobs: cpuPercent } },
    },
    { token: node.token },
  );
  expect(result.status, result.raw).toBe(200);
}

function metricsOf(server: TestServer, token: string, input: unknown) {
  return query<NodeMetricsOutput>(server.url, 'node.metrics', input, { token });
}

describe('node.metrics and metrics in node views', () => {
  it('node.metrics returns the beats in order, bounded by the ring, and `since` filters', async () => {
    await using server = await startTestServer({ env: ENV });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    for (let cpu = 1; cpu <= 7; cpu++) await beat(server, node, cpu);

    const all = await metricsOf(server, owner.token, { nodeId: node.nodeId });
    expect(all.status, all.raw).toBe(200);
    expect(all.data.nodeId).toBe(node.nodeId);
    expect(all.data.maxSamples).toBe(5);
    expect(all.data.sampleIntervalMs).toBe(0.001);
    expect(all.data.samples.map((s) => s.cpuPercent)).toEqual([3, 4, 5, 6, 7]);
    expect(all.data.samples.map((s) => s.gauges)).toEqual(
      [3, 4, 5, 6, 7].map((jobs) => ({ jobs })),
    );
    expect(all.data.samples[4]).toMatchObject({ memoryUsedBytes: 7e6 });
    const times = all.data.samples.map((s) => new Date(s.at).getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    const later = await metricsOf(server, owner.token, {
      nodeId: node.nodeId,
      since: all.data.samples[1]!.at,
    });
    expect(later.data.samples.map((s) => s.cpuPercent)).toEqual([5, 6, 7]);

    const bad = await metricsOf(server, owner.token, { nodeId: node.nodeId, since: 'yesterday' });
    expect(bad.status).toBe(400);
    expect(errorCode(bad)).toBe('request.invalid');
  });

  it('beats over the WebSocket fast path are sampled too', async () => {
    await using server = await startTestServer({ env: ENV });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const ws = wsClient(server, { token: node.token, clientVersion: CONTRACT_VERSION });
    try {
      for (const cpuPercent of [41, 42]) {
        await ws.client.runtimenode.heartbeat.mutate({
          nodeId: node.nodeId,
          healthState: 'online',
          metrics: { cpuPercent },
        });
      }
    } finally {
      await ws.close();
    }
    const history = await metricsOf(server, owner.token, { nodeId: node.nodeId });
    expect(history.data.samples.map((s) => s.cpuPercent)).toEqual([41, 42]);
  });

  it('node.get, node.list, node.findOnlineWithCapability and roster rows carry the latest metrics', async () => {
    await using server = await startTestServer({ env: ENV });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const sessionId = await sessionOf(server, owner);
    const attached = await mutate(
      server.url,
      'runtimenode.attach',
      {
        sessionId,
        participantId: owner.participantId,
        nodeId: node.nodeId,
        nodeVersion: '1.0',
        capabilities: { gpu: {} },
        healthState: 'online',
      },
      { token: node.token },
    );
    expect(attached.status, attached.raw).toBe(200);

    // Before any metrics: null, null.
    const bare = await query<NodeView>(
      server.url,
      'node.get',
      { nodeId: node.nodeId },
      {
        token: owner.token,
      },
    );
    expect(bare.data.presence).toMatchObject({ metrics: null, metricsReportedAt: null });

    await beat(server, node, 12);
    await beat(server, node, 13);
    const latest = { cpuPercent: 13, memoryUsedBytes: 13e6, gauges: { jobs: 13 } };

    const got = await query<NodeView>(
      server.url,
      'node.get',
      { nodeId: node.nodeId },
      {
        token: owner.token,
      },
    );
    expect(got.status, got.raw).toBe(200);
    expect(got.data.presence.metrics).toEqual(latest);
    // Reported by the last beat: the same database clock reading as its heartbeat time.
    expect(new Date(got.data.presence.metricsReportedAt!).getTime()).toBe(
      new Date(got.data.presence.lastHeartbeatAt!).getTime(),
    );

    const listed = await query<{ items: NodeView[] }>(
      server.url,
      'node.list',
      {},
      {
        token: owner.token,
      },
    );
    expect(listed.data.items.find((n) => n.nodeId === node.nodeId)?.presence.metrics).toEqual(
      latest,
    );
    const found = await query<{ items: NodeView[] }>(
      server.url,
      'node.findOnlineWithCapability',
      { capability: 'gpu' },
      { token: owner.token },
    );
    expect(found.data.items.map((n) => [n.nodeId, n.presence.metrics])).toEqual([
      [node.nodeId, latest],
    ]);

    const roster = await query<RosterOutput>(
      server.url,
      'runtimenode.roster',
      { sessionId },
      {
        token: owner.token,
      },
    );
    expect(roster.status, roster.raw).toBe(200);
    expect(roster.data.nodes[0]).toMatchObject({ nodeId: node.nodeId, metrics: latest });
    expect(new Date(roster.data.nodes[0]!.metricsReportedAt!).getTime()).toBe(
      new Date(got.data.presence.metricsReportedAt!).getTime(),
    );
  });

  it('visibility is node.get’s: a non-member gets node.not_found, a co-member and an admin read it', async () => {
    await using server = await startTestServer({ env: ENV });
    const owner = await participant(server);
    const colleague = await participant(server);
    const stranger = await participant(server);
    const node = await nodeOf(server, owner);
    await beat(server, node, 5);

    const denied = await metricsOf(server, stranger.token, { nodeId: node.nodeId });
    expect(denied.status).toBe(404);
    expect(errorCode(denied)).toBe('node.not_found');
    // Exactly the answer for a node that does not exist.
    const missing = await metricsOf(server, stranger.token, { nodeId: 'no-such-node' });
    expect(errorCode(missing)).toBe('node.not_found');

    // A co-member of a session the node is attached to sees it, as node.get does.
    const sessionId = await sessionOf(server, owner);
    const added = await mutate(
      server.url,
      'membership.add',
      { sessionId, participantId: colleague.participantId, role: 'viewer' },
      { token: owner.token },
    );
    expect(added.status, added.raw).toBe(200);
    expect(errorCode(await metricsOf(server, colleague.token, { nodeId: node.nodeId }))).toBe(
      'node.not_found',
    );
    const attached = await mutate(
      server.url,
      'runtimenode.attach',
      {
        sessionId,
        participantId: owner.participantId,
        nodeId: node.nodeId,
        nodeVersion: '1.0',
        capabilities: {},
        healthState: 'online',
      },
      { token: node.token },
    );
    expect(attached.status, attached.raw).toBe(200);
    const seen = await metricsOf(server, colleague.token, { nodeId: node.nodeId });
    expect(seen.status, seen.raw).toBe(200);
    expect(seen.data.samples.map((s) => s.cpuPercent)).toEqual([5]);

    const admin = await metricsOf(server, server.adminToken, { nodeId: node.nodeId });
    expect(admin.data.samples.map((s) => s.cpuPercent)).toEqual([5]);

    // A node's own credential is not a participant's.
    const asNode = await metricsOf(server, node.token, { nodeId: node.nodeId });
    expect(asNode.status).toBe(403);
  });
});
