import type { NodeId } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { getNode, isNodeOnline, listNodes } from '../../src/nodes/queries.js';
import { attach, detach } from '../../src/runtime-nodes/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import {
  addMemberAs,
  attachInput,
  makeNode,
  makeParticipant,
  makeSession,
  uniqueName,
} from '../fixtures.js';

const t = useTestDatabase();

/** An owner's node attached to a session with a viewer, a suspended member and a stranger around. */
async function scene() {
  const owner = await makeParticipant(t.db);
  const viewer = await makeParticipant(t.db);
  const suspended = await makeParticipant(t.db);
  const otherSessionMember = await makeParticipant(t.db);
  const stranger = await makeParticipant(t.db);
  const admin = await makeParticipant(t.db, 'admin');
  const session = await makeSession(t.db, owner);
  await addMemberAs(t.db, owner, session, viewer, 'viewer');
  await addMemberAs(t.db, owner, session, suspended, 'collaborator', 'suspended');
  const otherSession = await makeSession(t.db, otherSessionMember);
  const node = await makeNode(t.db, owner);
  await attach(t.db, node, attachInput(node, session));
  return {
    owner,
    viewer,
    suspended,
    otherSessionMember,
    otherSession,
    stranger,
    admin,
    session,
    node,
  };
}

describe('node.get visibility', () => {
  it('owner, active co-member and admin see the node; stranger, suspended member and other sessions get node.not_found', async () => {
    const s = await scene();
    for (const who of [s.owner, s.viewer, s.admin]) {
      const view = await getNode(t.db, who, s.node.nodeId);
      expect(view.nodeId).toBe(s.node.nodeId);
      expect(view.ownerParticipantId).toBe(s.owner.participantId);
      expect(view.activeAttachment?.sessionId).toBe(s.session);
    }
    for (const who of [s.stranger, s.suspended, s.otherSessionMember]) {
      const e = await expectTetherError(getNode(t.db, who, s.node.nodeId), 'node.not_found');
      expect(e.httpStatus).toBe(404);
    }
  });

  it('an invisible node is indistinguishable from a nonexistent one (same code and message)', async () => {
    const s = await scene();
    const hidden = await expectTetherError(
      getNode(t.db, s.stranger, s.node.nodeId),
      'node.not_found',
    );
    const missing = await expectTetherError(
      getNode(t.db, s.stranger, uniqueName('missing')),
      'node.not_found',
    );
    expect(hidden.message).toBe(missing.message);
    expect(hidden.details).toEqual(missing.details);
  });

  it('co-membership counts for an attachment in any state: a detached node stays visible to the session members', async () => {
    const s = await scene();
    await detach(t.db, s.node, { nodeId: s.node.nodeId });
    const view = await getNode(t.db, s.viewer, s.node.nodeId);
    expect(view.activeAttachment).toBeNull();
    expect(view.nodeId).toBe(s.node.nodeId);
  });

  it('returns the full view: identity, labels, metadata, capabilities, presence and active attachment', async () => {
    const s = await scene();
    const view = await getNode(t.db, s.owner, s.node.nodeId);
    expect(view).toMatchObject({
      name: 'test node',
      nodeType: 'daemon',
      platform: null,
      location: null,
      labels: {},
      metadata: {},
      capabilities: { gpu: { description: 'CUDA device', version: '12.0' } },
      nodeVersion: '1.0',
      status: 'active',
      revokedAt: null,
      presence: { healthState: 'online' },
      activeAttachment: { sessionId: s.session, state: 'registering' },
    });
    expect(view.presence.onlineSince).not.toBeNull();
    expect(view.presence.lastHeartbeatAt).not.toBeNull();
  });
});

describe('node.list visibility', () => {
  it('lists what the caller owns plus nodes attached to their sessions; admins list every node', async () => {
    const s = await scene();
    const ownedOnly = await makeNode(t.db, s.owner); // not attached anywhere
    const strangersOwn = await makeNode(t.db, s.stranger);

    const ids = async (who: typeof s.owner) =>
      (await listNodes(t.db, who, { limit: 500 })).items.map((n) => n.nodeId);
    expect((await ids(s.owner)).sort()).toEqual([s.node.nodeId, ownedOnly.nodeId].sort());
    expect(await ids(s.viewer)).toEqual([s.node.nodeId]);
    expect(await ids(s.suspended)).toEqual([]);
    expect(await ids(s.otherSessionMember)).toEqual([]);
    expect(await ids(s.stranger)).toEqual([strangersOwn.nodeId]);

    const adminIds = new Set<NodeId>();
    let cursor: string | undefined;
    do {
      const pageOut = await listNodes(t.db, s.admin, { limit: 500, ...(cursor ? { cursor } : {}) });
      pageOut.items.forEach((n) => adminIds.add(n.nodeId));
      cursor = pageOut.nextCursor ?? undefined;
    } while (cursor);
    for (const id of [s.node.nodeId, ownedOnly.nodeId, strangersOwn.nodeId])
      expect(adminIds.has(id)).toBe(true);
  });
});

describe('node.isOnline visibility', () => {
  it('same rule as node.get: owner, co-member and admin answered; stranger gets node.not_found', async () => {
    const s = await scene();
    for (const who of [s.owner, s.viewer, s.admin]) {
      await expect(isNodeOnline(t.db, who, s.node.nodeId)).resolves.toMatchObject({
        nodeId: s.node.nodeId,
        online: true,
      });
    }
    await expectTetherError(isNodeOnline(t.db, s.stranger, s.node.nodeId), 'node.not_found');
    await expectTetherError(isNodeOnline(t.db, s.owner, uniqueName('missing')), 'node.not_found');
  });
});
