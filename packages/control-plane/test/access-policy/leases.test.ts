/**
 * Lease rules at the service level: expiry recorded exactly once whoever gets there first (two
 * sweeps at once, or the next acquire), a release after the expiry records the expiry, and a
 * holder who lost their standing cannot invoke on the lease.
 */
import { describe, expect, it } from 'vitest';
import { decideInvocation } from '../../src/access-policy/decide.js';
import { acquireLease, expireLeases, releaseLease } from '../../src/access-policy/leases.js';
import { setPolicy } from '../../src/access-policy/policies.js';
import type { ParticipantPrincipal } from '../../src/auth/principal.js';
import { attach, detach } from '../../src/runtime-nodes/service.js';
import { useTestDatabase } from '../db.js';
import { addMemberAs, attachInput, makeNode, makeParticipant, makeSession } from '../fixtures.js';

const t = useTestDatabase();

const CAPS = { a: {}, b: {}, c: {}, d: {}, e: {} };

async function leasedNode(owner: ParticipantPrincipal, member?: ParticipantPrincipal) {
  const node = await makeNode(t.db, owner);
  const session = await makeSession(t.db, owner);
  if (member) await addMemberAs(t.db, owner, session, member, 'collaborator');
  await attach(t.db, node, attachInput(node, session, { capabilities: CAPS }));
  for (const capability of Object.keys(CAPS)) {
    await setPolicy(t.db, owner, { nodeId: node.nodeId, capability, policy: 'leased' });
  }
  return node;
}

/** Moves a lease's expiry into the past by the database clock. */
async function age(leaseId: string): Promise<void> {
  await t.db.query(
    `UPDATE capability_leases SET acquired_at = now() - interval '2 hours',
            expires_at = now() - interval '1 second' WHERE id = $1`,
    [leaseId],
  );
}

async function leaseEvents(nodeId: string) {
  const { rows } = await t.db.query<{ type: string; payload: { leaseId: string } }>(
    `SELECT type, payload FROM fleet_events WHERE node_id = $1 AND type LIKE 'lease.%' ORDER BY id`,
    [nodeId],
  );
  return rows.map((r) => [r.type, r.payload.leaseId]);
}

describe('lease expiry', () => {
  it('two sweeps at once end each expired lease exactly once, one lease.expired each', async () => {
    const owner = await makeParticipant(t.db);
    const node = await leasedNode(owner);
    const ids: string[] = [];
    for (const capability of Object.keys(CAPS)) {
      const lease = await acquireLease(t.db, owner, {
        nodeId: node.nodeId,
        capability,
        ttlSeconds: 60,
      });
      await age(lease.leaseId);
      ids.push(lease.leaseId);
    }
    const [first, second] = await Promise.all([expireLeases(t.db), expireLeases(t.db)]);
    expect(first + second).toBe(5);
    expect(await expireLeases(t.db)).toBe(0);
    const expired = (await leaseEvents(node.nodeId)).filter(([type]) => type === 'lease.expired');
    expect(expired.map(([, id]) => id).sort()).toEqual([...ids].sort());
  });

  it('an acquire ends an expired lease the sweep has not reached: lease.expired, then lease.granted', async () => {
    const owner = await makeParticipant(t.db);
    const member = await makeParticipant(t.db);
    const node = await leasedNode(owner, member);
    const old = await acquireLease(t.db, owner, {
      nodeId: node.nodeId,
      capability: 'a',
      ttlSeconds: 60,
    });
    await age(old.leaseId);
    const next = await acquireLease(t.db, member, {
      nodeId: node.nodeId,
      capability: 'a',
      ttlSeconds: 60,
    });
    expect(await leaseEvents(node.nodeId)).toEqual([
      ['lease.granted', old.leaseId],
      ['lease.expired', old.leaseId],
      ['lease.granted', next.leaseId],
    ]);
  });

  it('releasing a lease after its expiry records the expiry, not a release', async () => {
    const owner = await makeParticipant(t.db);
    const node = await leasedNode(owner);
    const lease = await acquireLease(t.db, owner, {
      nodeId: node.nodeId,
      capability: 'b',
      ttlSeconds: 60,
    });
    await age(lease.leaseId);
    const released = await releaseLease(t.db, owner, { leaseId: lease.leaseId });
    expect(released.endReason).toBe('expired');
    expect((await leaseEvents(node.nodeId)).map(([type]) => type)).toEqual([
      'lease.granted',
      'lease.expired',
    ]);
  });
});

describe('lease holder standing', () => {
  it('a holder whose node left the session can no longer invoke on the lease', async () => {
    const owner = await makeParticipant(t.db);
    const member = await makeParticipant(t.db);
    const node = await leasedNode(owner, member);
    await acquireLease(t.db, member, { nodeId: node.nodeId, capability: 'c', ttlSeconds: 600 });
    const decision = () =>
      decideInvocation(t.db, { principal: member, nodeId: node.nodeId, capability: 'c' });
    expect(await decision()).toEqual({ outcome: 'allow', policy: 'leased', via: 'lease' });
    await detach(t.db, node, { nodeId: node.nodeId });
    expect(await decision()).toEqual({ outcome: 'deny', policy: 'leased', reason: 'not_member' });
  });
});
