import type { SessionId } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/pool.js';
import { attach } from '../../src/runtime-nodes/service.js';
import { useTestDatabase } from '../db.js';
import { attachInput, makeNode, makeParticipant, makeSession } from '../fixtures.js';

const t = useTestDatabase();

describe('concurrent attaches', () => {
  it('P9 race: one node attaching to two sessions on parallel connections — exactly one wins', async () => {
    const owner = await makeParticipant(t.db);
    // Two independent pools: the attaches really run on separate backend connections.
    const left = createDb({ connectionString: t.url, max: 1 });
    const right = createDb({ connectionString: t.url, max: 1 });
    try {
      for (let round = 0; round < 20; round++) {
        const [s1, s2] = [await makeSession(t.db, owner), await makeSession(t.db, owner)];
        const node = await makeNode(t.db, owner);
        const outcomes = await Promise.allSettled([
          attach(left, node, attachInput(node, s1)),
          attach(right, node, attachInput(node, s2)),
        ]);
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0]!.reason).toMatchObject({ code: 'runtimenode.attach_conflict' });
        const { rows } = await t.db.query<{ session_id: SessionId }>(
          `SELECT session_id FROM runtime_node_attachments WHERE node_id = $1 AND state IN ('registering','online','degraded')`,
          [node.nodeId],
        );
        expect(rows).toHaveLength(1);
      }
    } finally {
      await Promise.all([left.close(), right.close()]);
    }
  });

  it('P9 race: the same node attaching to the same session twice yields one row', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    const pools = [
      createDb({ connectionString: t.url, max: 1 }),
      createDb({ connectionString: t.url, max: 1 }),
    ];
    try {
      const results = await Promise.all(
        pools.map((db) => attach(db, node, attachInput(node, session))),
      );
      expect(results[0]!.attachmentId).toBe(results[1]!.attachmentId);
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }
  });
});
