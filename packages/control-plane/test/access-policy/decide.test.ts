/**
 * The access policy matrix at the service level: each policy × owner / admin / eligible member
 * of a session the node is attached to / lease holder / viewer / participant who can see the node
 * but is not a member of its current session / stranger → the decision `decideInvocation` gives.
 */
import type { CapabilityPolicy } from '@tether/contracts';
import { beforeAll, describe, expect, it } from 'vitest';
import type { NodePrincipal, ParticipantPrincipal } from '../../src/auth/principal.js';
import {
  decideInvocation,
  mayDecideGated,
  type InvocationDecision,
} from '../../src/access-policy/decide.js';
import { acquireLease } from '../../src/access-policy/leases.js';
import { setPolicy } from '../../src/access-policy/policies.js';
import { revokeNode } from '../../src/nodes/service.js';
import { RevocationBus } from '../../src/auth/revocations.js';
import { attach, detach } from '../../src/runtime-nodes/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import { addMemberAs, attachInput, makeNode, makeParticipant, makeSession } from '../fixtures.js';

const t = useTestDatabase();

const CAPS = { shell: {}, camera: {}, arm: {}, printer: {} };
const CAPABILITY_OF: Record<CapabilityPolicy, string> = {
  owner: 'shell',
  free: 'camera',
  leased: 'arm',
  gated: 'printer',
};

interface Cast {
  owner: ParticipantPrincipal;
  admin: ParticipantPrincipal;
  member: ParticipantPrincipal;
  holder: ParticipantPrincipal;
  viewer: ParticipantPrincipal;
  formerMember: ParticipantPrincipal;
  stranger: ParticipantPrincipal;
  node: NodePrincipal;
}

let c: Cast;

beforeAll(async () => {
  const owner = await makeParticipant(t.db);
  const admin = await makeParticipant(t.db, 'admin');
  const member = await makeParticipant(t.db);
  const holder = await makeParticipant(t.db);
  const viewer = await makeParticipant(t.db);
  const formerMember = await makeParticipant(t.db);
  const stranger = await makeParticipant(t.db);
  const node = await makeNode(t.db, owner);
  // The node was attached to an earlier session (formerMember is a collaborator there: they can
  // still see the node), then detached and attached to the current one.
  const earlier = await makeSession(t.db, owner);
  await addMemberAs(t.db, owner, earlier, formerMember, 'collaborator');
  await attach(t.db, node, attachInput(node, earlier, { capabilities: CAPS }));
  await detach(t.db, node, { nodeId: node.nodeId });
  const current = await makeSession(t.db, owner);
  await addMemberAs(t.db, owner, current, member, 'collaborator');
  await addMemberAs(t.db, owner, current, holder, 'runtime contributor');
  await addMemberAs(t.db, owner, current, viewer, 'viewer');
  await attach(t.db, node, attachInput(node, current, { capabilities: CAPS }));
  for (const [policy, capability] of Object.entries(CAPABILITY_OF)) {
    await setPolicy(t.db, owner, {
      nodeId: node.nodeId,
      capability,
      policy: policy as CapabilityPolicy,
    });
  }
  await acquireLease(t.db, holder, { nodeId: node.nodeId, capability: 'arm', ttlSeconds: 600 });
  c = { owner, admin, member, holder, viewer, formerMember, stranger, node };
});

const allow = (policy: CapabilityPolicy, via: string) => ({ outcome: 'allow', policy, via });
const deny = (policy: CapabilityPolicy, reason: string) => ({ outcome: 'deny', policy, reason });
const GATE = { outcome: 'gate', policy: 'gated' };

type Who = keyof Omit<Cast, 'node' | 'stranger'>;

/** Expected decision per policy × caller (with `holder` holding the lease of the leased one). */
const MATRIX: Record<CapabilityPolicy, Record<Who, unknown>> = {
  owner: {
    owner: allow('owner', 'owner'),
    admin: allow('owner', 'admin'),
    member: deny('owner', 'not_owner'),
    holder: deny('owner', 'not_owner'),
    viewer: deny('owner', 'not_owner'),
    formerMember: deny('owner', 'not_owner'),
  },
  free: {
    owner: allow('free', 'owner'),
    admin: allow('free', 'admin'),
    member: allow('free', 'member'),
    holder: allow('free', 'member'),
    viewer: deny('free', 'not_member'),
    formerMember: deny('free', 'not_member'),
  },
  leased: {
    owner: deny('leased', 'lease_held_by_other'),
    admin: deny('leased', 'lease_held_by_other'),
    member: deny('leased', 'lease_held_by_other'),
    holder: allow('leased', 'lease'),
    viewer: deny('leased', 'not_member'),
    formerMember: deny('leased', 'not_member'),
  },
  gated: {
    owner: allow('gated', 'owner'),
    admin: allow('gated', 'admin'),
    member: GATE,
    holder: GATE,
    viewer: deny('gated', 'not_member'),
    formerMember: deny('gated', 'not_member'),
  },
};

function decideFor(who: ParticipantPrincipal, capability: string): Promise<InvocationDecision> {
  return decideInvocation(t.db, { principal: who, nodeId: c.node.nodeId, capability });
}

describe('access policy matrix (decideInvocation)', () => {
  for (const [policy, row] of Object.entries(MATRIX)) {
    for (const [who, expected] of Object.entries(row)) {
      it(`${policy} × ${who} → ${JSON.stringify(expected)}`, async () => {
        const cast = c[who as Who];
        expect(await decideFor(cast, CAPABILITY_OF[policy as CapabilityPolicy])).toEqual(expected);
      });
    }
  }

  it('a participant who cannot see the node gets node.not_found under every policy', async () => {
    for (const capability of Object.values(CAPABILITY_OF)) {
      await expectTetherError(decideFor(c.stranger, capability), 'node.not_found');
    }
    await expectTetherError(
      decideInvocation(t.db, { principal: c.owner, nodeId: 'no-such-node', capability: 'shell' }),
      'node.not_found',
    );
  });

  it('a capability without a policy is owner-only (the default)', async () => {
    expect(await decideFor(c.owner, 'undeclared')).toEqual(allow('owner', 'owner'));
    expect(await decideFor(c.member, 'undeclared')).toEqual(deny('owner', 'not_owner'));
  });

  it('leased with nobody holding the lease: lease_required for owner, admin and member alike', async () => {
    const node = await makeNode(t.db, c.owner);
    const session = await makeSession(t.db, c.owner);
    await addMemberAs(t.db, c.owner, session, c.member, 'collaborator');
    await attach(t.db, node, attachInput(node, session, { capabilities: CAPS }));
    await setPolicy(t.db, c.owner, { nodeId: node.nodeId, capability: 'arm', policy: 'leased' });
    for (const who of [c.owner, c.admin, c.member]) {
      expect(
        await decideInvocation(t.db, { principal: who, nodeId: node.nodeId, capability: 'arm' }),
      ).toEqual(deny('leased', 'lease_required'));
    }
  });

  it('a lease past its expiry lets nobody invoke, even before the sweep ends it', async () => {
    const node = await makeNode(t.db, c.owner);
    const session = await makeSession(t.db, c.owner);
    await attach(t.db, node, attachInput(node, session, { capabilities: CAPS }));
    await setPolicy(t.db, c.owner, { nodeId: node.nodeId, capability: 'arm', policy: 'leased' });
    const lease = await acquireLease(t.db, c.owner, {
      nodeId: node.nodeId,
      capability: 'arm',
      ttlSeconds: 60,
    });
    const decision = () =>
      decideInvocation(t.db, { principal: c.owner, nodeId: node.nodeId, capability: 'arm' });
    expect(await decision()).toEqual(allow('leased', 'lease'));
    await t.db.query(
      `UPDATE capability_leases SET acquired_at = now() - interval '2 minutes',
              expires_at = now() - interval '1 second' WHERE id = $1`,
      [lease.leaseId],
    );
    expect(await decision()).toEqual(deny('leased', 'lease_required'));
  });

  it('membership counts only while the node is attached to the session and the membership is active', async () => {
    const node = await makeNode(t.db, c.owner);
    const session = await makeSession(t.db, c.owner);
    const someone = await makeParticipant(t.db);
    await addMemberAs(t.db, c.owner, session, someone, 'collaborator', 'suspended');
    await attach(t.db, node, attachInput(node, session, { capabilities: CAPS }));
    await setPolicy(t.db, c.owner, { nodeId: node.nodeId, capability: 'camera', policy: 'free' });
    const asSomeone = () =>
      decideInvocation(t.db, { principal: someone, nodeId: node.nodeId, capability: 'camera' });
    // A suspended member does not even see the node.
    await expectTetherError(asSomeone(), 'node.not_found');
    await t.db.query(
      `UPDATE session_memberships SET state = 'active' WHERE session_id = $1 AND participant_id = $2`,
      [session, someone.participantId],
    );
    expect(await asSomeone()).toEqual(allow('free', 'member'));
    // Detached: still visible (a past attachment), no longer a member of its current session.
    await detach(t.db, node, { nodeId: node.nodeId });
    expect(await asSomeone()).toEqual(deny('free', 'not_member'));
  });

  it('a revoked node is node.not_found, even for its owner', async () => {
    const node = await makeNode(t.db, c.owner);
    await revokeNode(t.db, c.owner, { nodeId: node.nodeId }, new RevocationBus());
    await expectTetherError(
      decideInvocation(t.db, { principal: c.owner, nodeId: node.nodeId, capability: 'shell' }),
      'node.not_found',
    );
  });
});

describe('mayDecideGated: the node owner or an admin', () => {
  it('owner and admin may; members, viewers and strangers may not', async () => {
    const input = (who: ParticipantPrincipal) => ({ principal: who, nodeId: c.node.nodeId });
    expect(await mayDecideGated(t.db, input(c.owner))).toBe(true);
    expect(await mayDecideGated(t.db, input(c.admin))).toBe(true);
    for (const who of [c.member, c.holder, c.viewer, c.formerMember, c.stranger]) {
      expect(await mayDecideGated(t.db, input(who))).toBe(false);
    }
    expect(await mayDecideGated(t.db, { principal: c.admin, nodeId: 'no-such-node' })).toBe(false);
  });
});
