import { describe, expect, it } from 'vitest';
import { attach, capabilityUpdate, heartbeat } from '../../src/runtime-nodes/service.js';
import { raiseFloor } from '../../src/sessions/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import {
  GPU,
  attachInput,
  attachmentRow,
  makeNode,
  makeParticipant,
  makeSession,
} from '../fixtures.js';

const t = useTestDatabase();

async function nodeRow(nodeId: string) {
  const { rows } = await t.db.query<Record<string, unknown>>(
    `SELECT * FROM nodes WHERE node_id = $1`,
    [nodeId],
  );
  return rows[0];
}

describe('runtimenode.capabilityupdate', () => {
  it('P4 read-only attachment: version.floor_exceeded, rows byte-identical, still attached', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner, '2.0');
    const node = await makeNode(t.db, owner);
    const attached = await attach(t.db, node, attachInput(node, session, { nodeVersion: '1.9' }));
    expect(attached.readOnly).toBe(true);
    const beforeAttachment = await attachmentRow(t.db, node.nodeId, session);
    const beforeNode = await nodeRow(node.nodeId);

    const error = await expectTetherError(
      capabilityUpdate(t.db, node, {
        nodeId: node.nodeId,
        capabilities: { shell: {} },
        healthChanges: { state: 'online' },
      }),
      'version.floor_exceeded',
    );
    expect(error.httpStatus).toBe(409);
    expect(await attachmentRow(t.db, node.nodeId, session)).toEqual(beforeAttachment);
    expect(await nodeRow(node.nodeId)).toEqual(beforeNode);
    expect(beforeAttachment?.state).toBe('registering');
    // Read-only nodes may still beat (version-invariant).
    await expect(
      heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' }),
    ).resolves.toBeNull();
  });

  it('P4 a floor raised after attach makes the next capability write fail the same way', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner, '1.0');
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session, { nodeVersion: '1.4' }));
    const first = await capabilityUpdate(t.db, node, {
      nodeId: node.nodeId,
      capabilities: GPU,
      healthChanges: { state: 'online' },
    });
    expect(first.state).toBe('online');

    await raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: '1.5' });
    const before = await attachmentRow(t.db, node.nodeId, session);
    await expectTetherError(
      capabilityUpdate(t.db, node, { nodeId: node.nodeId, capabilities: { shell: {} } }),
      'version.floor_exceeded',
    );
    const after = await attachmentRow(t.db, node.nodeId, session);
    expect(after).toEqual(before);
    expect(after?.state).toBe('online');
  });

  it('registering → online requires declared capabilities (capabilityupdate_conflict otherwise)', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session, { capabilities: {} }));

    await expectTetherError(
      capabilityUpdate(t.db, node, {
        nodeId: node.nodeId,
        capabilities: {},
        healthChanges: { state: 'online' },
      }),
      'runtimenode.capabilityupdate_conflict',
    );
    expect((await attachmentRow(t.db, node.nodeId, session))?.state).toBe('registering');

    // Declaring first (an earlier update) keeps it registering; then online is allowed.
    const declared = await capabilityUpdate(t.db, node, { nodeId: node.nodeId, capabilities: GPU });
    expect(declared.state).toBe('registering');
    const online = await capabilityUpdate(t.db, node, {
      nodeId: node.nodeId,
      capabilities: GPU,
      healthChanges: { state: 'online' },
    });
    expect(online.state).toBe('online');
    expect((await attachmentRow(t.db, node.nodeId, session))?.state).toBe('online');
  });

  it('registering → online in the same update that declares capabilities', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session, { capabilities: {} }));
    const result = await capabilityUpdate(t.db, node, {
      nodeId: node.nodeId,
      capabilities: { shell: { commands: ['ls'] } },
      healthChanges: { state: 'online' },
    });
    expect(result).toMatchObject({ nodeId: node.nodeId, state: 'online' });
  });

  it('capabilities are a full replacement (removal by omission) on node and attachment', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session, { capabilities: { gpu: {}, shell: {} } }));
    await capabilityUpdate(t.db, node, {
      nodeId: node.nodeId,
      capabilities: { camera: { version: '2' } },
    });
    expect((await attachmentRow(t.db, node.nodeId, session))?.capabilities).toEqual({
      camera: { version: '2' },
    });
    expect((await nodeRow(node.nodeId))?.capabilities).toEqual({ camera: { version: '2' } });
  });

  it('an online attachment cannot drop to zero capabilities', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session));
    await capabilityUpdate(t.db, node, {
      nodeId: node.nodeId,
      capabilities: GPU,
      healthChanges: { state: 'online' },
    });
    await expectTetherError(
      capabilityUpdate(t.db, node, { nodeId: node.nodeId, capabilities: {} }),
      'runtimenode.capabilityupdate_conflict',
    );
    expect((await attachmentRow(t.db, node.nodeId, session))?.capabilities).toEqual(GPU);
  });

  it('online ↔ degraded through healthChanges', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session));
    await capabilityUpdate(t.db, node, {
      nodeId: node.nodeId,
      capabilities: GPU,
      healthChanges: { state: 'online' },
    });
    const degraded = await capabilityUpdate(t.db, node, {
      nodeId: node.nodeId,
      capabilities: GPU,
      healthChanges: { state: 'degraded', reason: 'thermal throttling' },
    });
    expect(degraded.state).toBe('degraded');
    const { rows } = await t.db.query<{ payload: Record<string, unknown> }>(
      `SELECT payload FROM fleet_events WHERE node_id = $1 AND type = 'runtimenode.state_changed' ORDER BY id`,
      [node.nodeId],
    );
    expect(rows.map((r) => r.payload)).toEqual([
      { from: 'registering', to: 'online', reason: null },
      { from: 'online', to: 'degraded', reason: 'thermal throttling' },
    ]);
  });

  it('updatedAt comes from the database clock', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session));
    const result = await capabilityUpdate(t.db, node, { nodeId: node.nodeId, capabilities: GPU });
    const { rows } = await t.db.query<{ updated_at: Date }>(
      `SELECT updated_at FROM nodes WHERE node_id = $1`,
      [node.nodeId],
    );
    expect(result.updatedAt).toEqual(rows[0]!.updated_at);
    const { rows: att } = await t.db.query<{ updated_at: Date }>(
      `SELECT updated_at FROM runtime_node_attachments WHERE node_id = $1`,
      [node.nodeId],
    );
    expect(att[0]!.updated_at).toEqual(result.updatedAt);
  });

  it('without an active attachment: node capabilities update; a health change is refused', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    const result = await capabilityUpdate(t.db, node, { nodeId: node.nodeId, capabilities: GPU });
    expect(result.state).toBe('offline');
    expect((await nodeRow(node.nodeId))?.capabilities).toEqual(GPU);
    await expectTetherError(
      capabilityUpdate(t.db, node, {
        nodeId: node.nodeId,
        capabilities: GPU,
        healthChanges: { state: 'online' },
      }),
      'runtimenode.not_attached',
    );
  });

  it('a node cannot update another node (auth.principal_mismatch)', async () => {
    const owner = await makeParticipant(t.db);
    const a = await makeNode(t.db, owner);
    const b = await makeNode(t.db, owner);
    await expectTetherError(
      capabilityUpdate(t.db, a, { nodeId: b.nodeId, capabilities: GPU }),
      'auth.principal_mismatch',
    );
  });
});
