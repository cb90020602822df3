/**
 * Regression: a heartbeat in flight when its node is revoked (or served from another replica's
 * credential cache) must not bring the revoked node's presence back online.
 */
import { describe, expect, it } from 'vitest';
import { heartbeat } from '../../src/runtime-nodes/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import { makeNode, makeParticipant, presenceOf } from '../fixtures.js';

const t = useTestDatabase();

describe('beat after revoke', () => {
  it('a heartbeat for a revoked node is refused and presence stays offline', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' });
    await t.db.query(
      `UPDATE nodes SET status = 'revoked', revoked_at = now() WHERE node_id = $1;`,
      [node.nodeId],
    );
    await t.db.query(
      `UPDATE runtime_node_presence SET health_state = 'offline' WHERE node_id = $1`,
      [node.nodeId],
    );
    await expectTetherError(
      heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' }),
      'auth.unauthenticated',
    );
    expect((await presenceOf(t.db, node.nodeId))?.health_state).toBe('offline');
  });
});
