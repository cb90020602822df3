/**
 * Binding many WebSocket connections in one statement (a reconnect wave): each node's presence
 * follows its latest connection, goes online with one `presence.changed` (cause connection) only
 * when it was offline, and revoked nodes are never bound.
 */
import { describe, expect, it } from 'vitest';
import { bindConnections, releaseConnections } from '../../src/runtime-nodes/presence.js';
import { useTestDatabase } from '../db.js';
import { makeNode, makeParticipant, presenceOf } from '../fixtures.js';

const t = useTestDatabase();

async function connectionEvents(nodeIds: string[]): Promise<string[]> {
  const { rows } = await t.db.query<{ node_id: string; to: string; cause: string }>(
    `SELECT node_id, payload->>'to' AS to, payload->>'cause' AS cause FROM fleet_events
      WHERE type = 'presence.changed' AND node_id = ANY($1) ORDER BY id`,
    [nodeIds],
  );
  return rows.map((r) => `${r.node_id}:${r.to}:${r.cause}`);
}

describe('bindConnections', () => {
  it('binds a batch: latest connection per node, one event per node that came online, revoked nodes skipped', async () => {
    const owner = await makeParticipant(t.db);
    const [a, b, revoked] = await Promise.all([
      makeNode(t.db, owner),
      makeNode(t.db, owner),
      makeNode(t.db, owner),
    ]);
    await t.db.query(`UPDATE nodes SET status = 'revoked', revoked_at = now() WHERE node_id = $1`, [
      revoked.nodeId,
    ]);

    const bound = await bindConnections(t.db, [
      { nodeId: a.nodeId, connectionId: 'a-old' },
      { nodeId: b.nodeId, connectionId: 'b-1' },
      { nodeId: revoked.nodeId, connectionId: 'r-1' },
      { nodeId: a.nodeId, connectionId: 'a-new' },
    ]);
    expect(bound.map((x) => `${x.nodeId}:${x.from}>${x.to}`).sort()).toEqual(
      [`${a.nodeId}:offline>online`, `${b.nodeId}:offline>online`].sort(),
    );
    const rows = await t.db.query<{
      node_id: string;
      connection_id: string | null;
      health_state: string;
    }>(
      `SELECT node_id, connection_id, health_state FROM runtime_node_presence WHERE node_id = ANY($1)`,
      [[a.nodeId, b.nodeId, revoked.nodeId]],
    );
    const byNode = new Map(rows.rows.map((r) => [r.node_id, r]));
    expect(byNode.get(a.nodeId)).toMatchObject({ connection_id: 'a-new', health_state: 'online' });
    expect(byNode.get(b.nodeId)).toMatchObject({ connection_id: 'b-1', health_state: 'online' });
    expect(byNode.get(revoked.nodeId)).toMatchObject({
      connection_id: null,
      health_state: 'offline',
    });
    expect((await connectionEvents([a.nodeId, b.nodeId, revoked.nodeId])).sort()).toEqual(
      [`${a.nodeId}:online:connection`, `${b.nodeId}:online:connection`].sort(),
    );

    // The older connection's close clears nothing; the newer one's takes the node offline.
    await releaseConnections(t.db, [{ nodeId: a.nodeId, connectionId: 'a-old' }]);
    expect((await presenceOf(t.db, a.nodeId))?.health_state).toBe('online');
    await releaseConnections(t.db, [{ nodeId: a.nodeId, connectionId: 'a-new' }]);
    expect((await presenceOf(t.db, a.nodeId))?.health_state).toBe('offline');
  });

  it('a node already online keeps its health and writes no event when it binds a new connection', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    await bindConnections(t.db, [{ nodeId: node.nodeId, connectionId: 'c-1' }]);
    await t.db.query(
      `UPDATE runtime_node_presence SET health_state = 'degraded' WHERE node_id = $1`,
      [node.nodeId],
    );
    const bound = await bindConnections(t.db, [{ nodeId: node.nodeId, connectionId: 'c-2' }]);
    expect(bound).toEqual([{ nodeId: node.nodeId, from: 'degraded', to: 'degraded' }]);
    expect(await connectionEvents([node.nodeId])).toEqual([`${node.nodeId}:online:connection`]);
  });
});
