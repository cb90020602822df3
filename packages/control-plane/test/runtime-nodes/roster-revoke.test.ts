import { describe, expect, it } from 'vitest';
import { attach, heartbeat, revokeAttachment } from '../../src/runtime-nodes/service.js';
import { roster } from '../../src/runtime-nodes/roster.js';
import { getNode } from '../../src/nodes/queries.js';
import { raiseFloor } from '../../src/sessions/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import {
  addMemberAs,
  attachInput,
  makeNode,
  makeParticipant,
  makeSession,
  presenceOf,
} from '../fixtures.js';

const t = useTestDatabase();

describe('runtimenode.roster', () => {
  it('lists every attachment with both axes verbatim and readOnly derived per row', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner, '1.5');
    const modern = await makeNode(t.db, owner);
    const legacy = await makeNode(t.db, owner);
    await attach(t.db, modern, attachInput(modern, session, { nodeVersion: '1.6' }));
    await attach(t.db, legacy, attachInput(legacy, session, { nodeVersion: '1.4' }));
    await t.db.query(
      `UPDATE runtime_node_presence SET last_heartbeat_at = NULL WHERE node_id = $1`,
      [legacy.nodeId],
    );

    const { nodes } = await roster(t.db, owner, { sessionId: session });
    expect(nodes.map((n) => [n.nodeId, n.state, n.readOnly, n.nodeVersion])).toEqual([
      [modern.nodeId, 'registering', false, '1.6'],
      [legacy.nodeId, 'registering', true, '1.4'],
    ]);
    expect(nodes[0]!.healthState).toBe('online');
    expect(nodes[0]!.lastHeartbeatAt).not.toBeNull();
    expect(nodes[1]!.lastHeartbeatAt).toBeNull();
    // The node view's active attachment says the same.
    expect((await getNode(t.db, owner, modern.nodeId)).activeAttachment?.readOnly).toBe(false);
    expect((await getNode(t.db, owner, legacy.nodeId)).activeAttachment?.readOnly).toBe(true);

    // Raising the floor flips readOnly on the next read; nobody is disconnected.
    await raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: '1.7' });
    const again = await roster(t.db, owner, { sessionId: session });
    expect(again.nodes.map((n) => [n.readOnly, n.state])).toEqual([
      [true, 'registering'],
      [true, 'registering'],
    ]);
    expect((await getNode(t.db, owner, modern.nodeId)).activeAttachment?.readOnly).toBe(true);
  });

  it('members of any role read the roster; strangers get permission_denied; admins read any', async () => {
    const owner = await makeParticipant(t.db);
    const viewer = await makeParticipant(t.db);
    const stranger = await makeParticipant(t.db);
    const admin = await makeParticipant(t.db, 'admin');
    const session = await makeSession(t.db, owner);
    await addMemberAs(t.db, owner, session, viewer, 'viewer');
    await expect(roster(t.db, viewer, { sessionId: session })).resolves.toEqual({ nodes: [] });
    await expect(roster(t.db, admin, { sessionId: session })).resolves.toEqual({ nodes: [] });
    const e = await expectTetherError(
      roster(t.db, stranger, { sessionId: session }),
      'runtimenode.permission_denied',
    );
    expect(e.httpStatus).toBe(403);
  });
});

describe('runtimenode.revoke', () => {
  it('owner revokes one attachment: terminal for that session, presence unchanged', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session));
    await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' });
    const presence = await presenceOf(t.db, node.nodeId);
    await expect(
      revokeAttachment(t.db, owner, { sessionId: session, nodeId: node.nodeId }),
    ).resolves.toBeNull();
    expect(await presenceOf(t.db, node.nodeId)).toEqual(presence);
    const { nodes } = await roster(t.db, owner, { sessionId: session });
    expect(nodes[0]!.state).toBe('revoked');
  });

  it('only a session owner or admin may revoke', async () => {
    const owner = await makeParticipant(t.db);
    const collaborator = await makeParticipant(t.db);
    const admin = await makeParticipant(t.db, 'admin');
    const session = await makeSession(t.db, owner);
    await addMemberAs(t.db, owner, session, collaborator, 'collaborator');
    const node = await makeNode(t.db, collaborator);
    await attach(t.db, node, attachInput(node, session));
    await expectTetherError(
      revokeAttachment(t.db, collaborator, { sessionId: session, nodeId: node.nodeId }),
      'runtimenode.permission_denied',
    );
    await expect(
      revokeAttachment(t.db, admin, { sessionId: session, nodeId: node.nodeId }),
    ).resolves.toBeNull();
  });

  it('revoking a node that never attached to the session → node.not_found', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await expectTetherError(
      revokeAttachment(t.db, owner, { sessionId: session, nodeId: node.nodeId }),
      'node.not_found',
    );
  });
});
