/**
 * Enrollment service rules on separate backend connections: the key row lock, and the
 * all-or-nothing transaction around key use, node, presence and event.
 */
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/pool.js';
import { createKey, enroll, listKeys } from '../../src/enrollment/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import { makeParticipant, uniqueName } from '../fixtures.js';

const t = useTestDatabase();

const device = (enrollmentKey: string, nodeId?: string) => ({
  enrollmentKey,
  name: 'edge box',
  nodeType: 'daemon',
  ...(nodeId === undefined ? {} : { nodeId: nodeId as never }),
});

describe('enrollment races on separate connections', () => {
  it('a single-use key raced from two connections enrolls exactly one node', async () => {
    const owner = await makeParticipant(t.db, 'admin');
    const left = createDb({ connectionString: t.url, max: 1 });
    const right = createDb({ connectionString: t.url, max: 1 });
    try {
      for (let round = 0; round < 10; round++) {
        const key = await createKey(t.db, owner, {});
        const ids = [uniqueName('racer'), uniqueName('racer')];
        const outcomes = await Promise.allSettled([
          enroll(left, device(key.enrollmentKey, ids[0])),
          enroll(right, device(key.enrollmentKey, ids[1])),
        ]);
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0]!.reason).toMatchObject({ code: 'enrollment.key_spent' });
        const { rows } = await t.db.query(`SELECT node_id FROM nodes WHERE node_id = ANY($1)`, [
          ids,
        ]);
        expect(rows).toEqual([{ node_id: won[0]!.value.nodeId }]);
      }
    } finally {
      await Promise.all([left.close(), right.close()]);
    }
  });
});

describe('enrollment is all or nothing', () => {
  it('a taken node id leaves no trace: key unused, no presence row, no event', async () => {
    const owner = await makeParticipant(t.db, 'admin');
    const reusable = await createKey(t.db, owner, { reusable: true });
    const nodeId = uniqueName('taken');
    await enroll(t.db, device(reusable.enrollmentKey, nodeId));
    const events = async () =>
      (await t.db.query(`SELECT 1 FROM fleet_events WHERE node_id = $1`, [nodeId])).rows.length;
    const before = await events();

    const key = await createKey(t.db, owner, {});
    await expectTetherError(enroll(t.db, device(key.enrollmentKey, nodeId)), 'node.id_taken');
    const view = (await listKeys(t.db, owner)).items.find((k) => k.keyId === key.keyId)!;
    expect(view).toMatchObject({ state: 'active', useCount: 0, lastUsedAt: null });
    expect(await events()).toBe(before);
    const { rows } = await t.db.query(
      `SELECT count(*)::int AS n FROM runtime_node_presence WHERE node_id = $1`,
      [nodeId],
    );
    expect(rows).toEqual([{ n: 1 }]);
  });
});
