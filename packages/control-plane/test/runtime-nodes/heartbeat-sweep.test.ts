import { HeartbeatInput } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { heartbeat } from '../../src/runtime-nodes/service.js';
import { sweepPresence } from '../../src/runtime-nodes/sweep.js';
import { useTestDatabase } from '../db.js';
import {
  SECONDS,
  ageHeartbeat,
  makeNode,
  makeParticipant,
  presenceOf,
  tableSnapshot,
} from '../fixtures.js';

const t = useTestDatabase();

async function dbNow(): Promise<Date> {
  const { rows } = await t.db.query<{ now: Date }>(`SELECT now() AS now`);
  return rows[0]!.now;
}

async function onlineNode() {
  const owner = await makeParticipant(t.db);
  const node = await makeNode(t.db, owner);
  await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' });
  return node;
}

/** Runs the sweep and returns only this node's transitions (other tests' nodes share the db). */
async function sweepFor(nodeId: string) {
  return (await sweepPresence(t.db, SECONDS)).filter((tr) => tr.nodeId === nodeId);
}

describe('heartbeat and the staleness sweep', () => {
  it('P6 a node starts offline and a beat makes it online with the database clock', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    expect((await presenceOf(t.db, node.nodeId))?.health_state).toBe('offline');
    expect((await presenceOf(t.db, node.nodeId))?.last_heartbeat_at).toBeNull();

    const before = await dbNow();
    await expect(
      heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' }),
    ).resolves.toBeNull();
    const after = await dbNow();
    const presence = await presenceOf(t.db, node.nodeId);
    expect(presence?.health_state).toBe('online');
    expect(presence!.last_heartbeat_at!.getTime()).toBeGreaterThanOrEqual(before.getTime());
    expect(presence!.last_heartbeat_at!.getTime()).toBeLessThanOrEqual(after.getTime());
    expect(presence?.online_since).not.toBeNull();
  });

  it('P6 a beat creates the presence row if it is missing and refreshes it after', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    await t.db.query(`DELETE FROM runtime_node_presence WHERE node_id = $1`, [node.nodeId]);
    await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'degraded' });
    expect((await presenceOf(t.db, node.nodeId))?.health_state).toBe('degraded');
    await ageHeartbeat(t.db, node.nodeId, 10);
    const aged = (await presenceOf(t.db, node.nodeId))!.last_heartbeat_at!;
    await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' });
    const refreshed = (await presenceOf(t.db, node.nodeId))!.last_heartbeat_at!;
    expect(refreshed.getTime()).toBeGreaterThan(aged.getTime());
  });

  it('P6 a beat stores bounded metrics and keeps them when a later beat omits them', async () => {
    const node = await onlineNode();
    const metrics = {
      cpuPercent: 12.5,
      memoryUsedBytes: 1024,
      uptimeSeconds: 60,
      gauges: { queue_depth: 3 },
    };
    await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online', metrics });
    await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' });
    const { rows } = await t.db.query<{ metrics: unknown }>(
      `SELECT metrics FROM runtime_node_presence WHERE node_id = $1`,
      [node.nodeId],
    );
    expect(rows[0]!.metrics).toEqual(metrics);
  });

  it('sweep: 45 s stale online → degraded', async () => {
    const node = await onlineNode();
    await ageHeartbeat(t.db, node.nodeId, 45);
    expect(await sweepFor(node.nodeId)).toEqual([
      { nodeId: node.nodeId, from: 'online', to: 'degraded' },
    ]);
    expect((await presenceOf(t.db, node.nodeId))?.health_state).toBe('degraded');
  });

  it('sweep: 90 s stale online → offline directly, online_since cleared', async () => {
    const node = await onlineNode();
    await ageHeartbeat(t.db, node.nodeId, 90);
    expect(await sweepFor(node.nodeId)).toEqual([
      { nodeId: node.nodeId, from: 'online', to: 'offline' },
    ]);
    const presence = await presenceOf(t.db, node.nodeId);
    expect(presence?.health_state).toBe('offline');
    expect(presence?.online_since).toBeNull();
  });

  it('sweep: degraded aged past 60 s → offline', async () => {
    const node = await onlineNode();
    await ageHeartbeat(t.db, node.nodeId, 45);
    await sweepFor(node.nodeId);
    await ageHeartbeat(t.db, node.nodeId, 61);
    expect(await sweepFor(node.nodeId)).toEqual([
      { nodeId: node.nodeId, from: 'degraded', to: 'offline' },
    ]);
  });

  it('sweep: a fresh node is untouched', async () => {
    const node = await onlineNode();
    await ageHeartbeat(t.db, node.nodeId, 29);
    const before = await presenceOf(t.db, node.nodeId);
    expect(await sweepFor(node.nodeId)).toEqual([]);
    expect(await presenceOf(t.db, node.nodeId)).toEqual(before);
  });

  it('sweep is idempotent: transition-only, a second run returns and changes nothing', async () => {
    const node = await onlineNode();
    await ageHeartbeat(t.db, node.nodeId, 45);
    expect(await sweepFor(node.nodeId)).toHaveLength(1);
    const afterFirst = await presenceOf(t.db, node.nodeId);
    expect(await sweepFor(node.nodeId)).toEqual([]);
    expect(await presenceOf(t.db, node.nodeId)).toEqual(afterFirst);
    await ageHeartbeat(t.db, node.nodeId, 120);
    expect(await sweepFor(node.nodeId)).toHaveLength(1);
    expect(await sweepFor(node.nodeId)).toEqual([]);
    // Already-offline rows are never rewritten.
    const offline = await presenceOf(t.db, node.nodeId);
    await sweepFor(node.nodeId);
    expect(await presenceOf(t.db, node.nodeId)).toEqual(offline);
  });

  it('sweep writes presence only: nodes, attachments, sessions and memberships unchanged', async () => {
    const node = await onlineNode();
    await ageHeartbeat(t.db, node.nodeId, 120);
    const before = await Promise.all(
      (['nodes', 'runtime_node_attachments', 'sessions', 'session_memberships'] as const).map((x) =>
        tableSnapshot(t.db, x),
      ),
    );
    expect(await sweepFor(node.nodeId)).toHaveLength(1);
    const after = await Promise.all(
      (['nodes', 'runtime_node_attachments', 'sessions', 'session_memberships'] as const).map((x) =>
        tableSnapshot(t.db, x),
      ),
    );
    expect(after).toEqual(before);
  });

  it('sweep records one presence.changed event per transition', async () => {
    const node = await onlineNode();
    await ageHeartbeat(t.db, node.nodeId, 45);
    await sweepFor(node.nodeId);
    await sweepFor(node.nodeId);
    await ageHeartbeat(t.db, node.nodeId, 90);
    await sweepFor(node.nodeId);
    const { rows } = await t.db.query<{ payload: unknown }>(
      `SELECT payload FROM fleet_events WHERE node_id = $1 AND type = 'presence.changed' ORDER BY id`,
      [node.nodeId],
    );
    expect(rows.map((r) => r.payload)).toEqual([
      { from: 'offline', to: 'online', cause: 'heartbeat' },
      { from: 'online', to: 'degraded', cause: 'sweep' },
      { from: 'degraded', to: 'offline', cause: 'sweep' },
    ]);
  });

  it('degraded + beat → online', async () => {
    const node = await onlineNode();
    await ageHeartbeat(t.db, node.nodeId, 45);
    await sweepFor(node.nodeId);
    await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' });
    expect((await presenceOf(t.db, node.nodeId))?.health_state).toBe('online');
  });

  it('offline + beat → online, with a new online_since', async () => {
    const node = await onlineNode();
    await ageHeartbeat(t.db, node.nodeId, 90);
    await sweepFor(node.nodeId);
    expect((await presenceOf(t.db, node.nodeId))?.online_since).toBeNull();
    await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' });
    const presence = await presenceOf(t.db, node.nodeId);
    expect(presence?.health_state).toBe('online');
    expect(presence?.online_since).not.toBeNull();
  });

  it('a beat without a transition writes no event', async () => {
    const node = await onlineNode();
    for (let i = 0; i < 5; i++)
      await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' });
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM fleet_events WHERE node_id = $1`,
      [node.nodeId],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('a node may not self-report offline (schema rejects it)', () => {
    const parsed = HeartbeatInput.safeParse({ nodeId: 'n1', healthState: 'offline' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['healthState']);
  });

  it('the thresholds are parameters: shorter durations demote sooner', async () => {
    const node = await onlineNode();
    await ageHeartbeat(t.db, node.nodeId, 2);
    const transitions = (
      await sweepPresence(t.db, { degradedAfterMs: 1_000, offlineAfterMs: 5_000 })
    ).filter((tr) => tr.nodeId === node.nodeId);
    expect(transitions).toEqual([{ nodeId: node.nodeId, from: 'online', to: 'degraded' }]);
  });

  it('a node cannot beat for another node (auth.principal_mismatch)', async () => {
    const a = await onlineNode();
    const b = await onlineNode();
    await expect(
      heartbeat(t.db, a, { nodeId: b.nodeId, healthState: 'online' }),
    ).rejects.toMatchObject({
      code: 'auth.principal_mismatch',
    });
  });
});
