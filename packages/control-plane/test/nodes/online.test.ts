import { randomBytes } from 'node:crypto';
import type { Capabilities, NodeId } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import type { ParticipantPrincipal } from '../../src/auth/principal.js';
import { RevocationBus } from '../../src/auth/revocations.js';
import { findOnlineWithCapability, isNodeOnline } from '../../src/nodes/queries.js';
import { registerNode, revokeNode } from '../../src/nodes/service.js';
import { attach, detach, heartbeat } from '../../src/runtime-nodes/service.js';
import { sweepPresence } from '../../src/runtime-nodes/sweep.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import {
  SECONDS,
  addMemberAs,
  ageHeartbeat,
  attachInput,
  makeParticipant,
  makeSession,
  uniqueName,
} from '../fixtures.js';

const t = useTestDatabase();

async function node(owner: ParticipantPrincipal, capabilities: Capabilities = {}) {
  const registered = await registerNode(t.db, {
    nodeId: uniqueName('n'),
    ownerParticipantId: owner.participantId,
    name: 'node',
    nodeType: 'daemon',
    capabilities,
    tokenHash: randomBytes(32),
  });
  return {
    kind: 'node' as const,
    nodeId: registered.nodeId,
    ownerParticipantId: registered.ownerParticipantId,
  };
}

async function found(
  actor: ParticipantPrincipal,
  capability: string,
  sessionId?: string,
): Promise<NodeId[]> {
  const page = await findOnlineWithCapability(t.db, actor, {
    capability,
    limit: 500,
    ...(sessionId ? { sessionId: sessionId as never } : {}),
  });
  return page.items.map((n) => n.nodeId);
}

describe('node.isOnline', () => {
  it('a registered node is offline until it beats, then online with onlineSince and lastHeartbeatAt', async () => {
    const owner = await makeParticipant(t.db);
    const n = await node(owner);
    await expect(isNodeOnline(t.db, owner, n.nodeId)).resolves.toEqual({
      nodeId: n.nodeId,
      online: false,
      healthState: 'offline',
      onlineSince: null,
      lastHeartbeatAt: null,
    });
    await heartbeat(t.db, n, { nodeId: n.nodeId, healthState: 'online' });
    const after = await isNodeOnline(t.db, owner, n.nodeId);
    expect(after).toMatchObject({ nodeId: n.nodeId, online: true, healthState: 'online' });
    expect(after.onlineSince).not.toBeNull();
    expect(after.lastHeartbeatAt).not.toBeNull();
  });

  it('degraded counts as online and is reported as degraded; the sweep taking it offline makes it not online', async () => {
    const owner = await makeParticipant(t.db);
    const n = await node(owner);
    await heartbeat(t.db, n, { nodeId: n.nodeId, healthState: 'degraded' });
    await expect(isNodeOnline(t.db, owner, n.nodeId)).resolves.toMatchObject({
      online: true,
      healthState: 'degraded',
    });
    await ageHeartbeat(t.db, n.nodeId, 61);
    await sweepPresence(t.db, SECONDS);
    await expect(isNodeOnline(t.db, owner, n.nodeId)).resolves.toMatchObject({
      online: false,
      healthState: 'offline',
      onlineSince: null,
    });
  });

  it('a revoked identity is never online, even if a late beat set its presence', async () => {
    const owner = await makeParticipant(t.db);
    const n = await node(owner);
    await revokeNode(t.db, owner, { nodeId: n.nodeId }, new RevocationBus());
    // State left by a beat that raced the revoke on an older server (beats now refuse revoked nodes).
    await t.db.query(
      `UPDATE runtime_node_presence SET health_state = 'online' WHERE node_id = $1`,
      [n.nodeId],
    );
    await expect(isNodeOnline(t.db, owner, n.nodeId)).resolves.toMatchObject({
      online: false,
      healthState: 'online',
    });
  });
});

describe('node.findOnlineWithCapability', () => {
  it('returns only nodes that are online (or degraded) AND declare the capability, in node_id order', async () => {
    const owner = await makeParticipant(t.db);
    const onlineGpu = await node(owner, { gpu: {} });
    const degradedGpu = await node(owner, { gpu: { version: '2' }, shell: {} });
    await node(owner, { gpu: {} }); // offline, never beat
    const onlineCpu = await node(owner, { cpu: {} });
    const revokedGpu = await node(owner, { gpu: {} });
    for (const n of [onlineGpu, onlineCpu, revokedGpu])
      await heartbeat(t.db, n, { nodeId: n.nodeId, healthState: 'online' });
    await heartbeat(t.db, degradedGpu, { nodeId: degradedGpu.nodeId, healthState: 'degraded' });
    await revokeNode(t.db, owner, { nodeId: revokedGpu.nodeId }, new RevocationBus());
    // Presence left online by a beat that raced the revoke (beats now refuse revoked nodes).
    await t.db.query(
      `UPDATE runtime_node_presence SET health_state = 'online' WHERE node_id = $1`,
      [revokedGpu.nodeId],
    );

    expect(await found(owner, 'gpu')).toEqual([onlineGpu.nodeId, degradedGpu.nodeId].sort());
    expect(await found(owner, 'cpu')).toEqual([onlineCpu.nodeId]);
    expect(await found(owner, 'camera')).toEqual([]);
  });

  it('same visibility as node.list: a stranger finds nothing, an admin finds the node', async () => {
    const owner = await makeParticipant(t.db);
    const stranger = await makeParticipant(t.db);
    const admin = await makeParticipant(t.db, 'admin');
    const capability = `cap-${randomBytes(4).toString('hex')}`;
    const n = await node(owner, { [capability]: {} });
    await heartbeat(t.db, n, { nodeId: n.nodeId, healthState: 'online' });
    expect(await found(stranger, capability)).toEqual([]);
    expect(await found(admin, capability)).toEqual([n.nodeId]);
  });

  it('sessionId: the active attachment must be in that session and its snapshot must declare the capability', async () => {
    const owner = await makeParticipant(t.db);
    const viewer = await makeParticipant(t.db);
    const stranger = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const elsewhere = await makeSession(t.db, owner);
    await addMemberAs(t.db, owner, session, viewer, 'viewer');
    const inSession = await node(owner);
    const inOther = await node(owner);
    const detached = await node(owner);
    const staleSnapshot = await node(owner);
    const notAttached = await node(owner, { gpu: {} });
    await heartbeat(t.db, notAttached, { nodeId: notAttached.nodeId, healthState: 'online' });
    await attach(t.db, inSession, attachInput(inSession, session));
    await attach(t.db, inOther, attachInput(inOther, elsewhere));
    await attach(t.db, detached, attachInput(detached, session));
    await detach(t.db, detached, { nodeId: detached.nodeId });
    await heartbeat(t.db, detached, { nodeId: detached.nodeId, healthState: 'online' }); // online, but not attached
    await attach(t.db, staleSnapshot, attachInput(staleSnapshot, session));
    // The node now declares gpu but its attachment's snapshot does not.
    await t.db.query(
      `UPDATE runtime_node_attachments SET capabilities = '{"cpu":{}}' WHERE node_id = $1`,
      [staleSnapshot.nodeId],
    );

    expect(await found(owner, 'gpu', session)).toEqual([inSession.nodeId]);
    expect(await found(viewer, 'gpu', session)).toEqual([inSession.nodeId]);
    expect(await found(stranger, 'gpu', session)).toEqual([]);
    expect((await found(owner, 'gpu')).sort()).toEqual(
      [
        inSession.nodeId,
        inOther.nodeId,
        detached.nodeId,
        staleSnapshot.nodeId,
        notAttached.nodeId,
      ].sort(),
    );
  });

  it('pages with a cursor and rejects a foreign cursor with request.invalid', async () => {
    const owner = await makeParticipant(t.db);
    const capability = `cap-${randomBytes(4).toString('hex')}`;
    const nodes = [
      await node(owner, { [capability]: {} }),
      await node(owner, { [capability]: {} }),
      await node(owner, { [capability]: {} }),
    ];
    for (const n of nodes) await heartbeat(t.db, n, { nodeId: n.nodeId, healthState: 'online' });
    const first = await findOnlineWithCapability(t.db, owner, { capability, limit: 2 });
    const second = await findOnlineWithCapability(t.db, owner, {
      capability,
      limit: 2,
      cursor: first.nextCursor!,
    });
    expect([...first.items, ...second.items].map((n) => n.nodeId)).toEqual(
      nodes.map((n) => n.nodeId).sort(),
    );
    expect(second.nextCursor).toBeNull();
    await expectTetherError(
      findOnlineWithCapability(t.db, owner, { capability, cursor: 'bogus' }),
      'request.invalid',
    );
  });
});
