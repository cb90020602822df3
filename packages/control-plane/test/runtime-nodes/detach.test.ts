import { describe, expect, it } from 'vitest';
import { attach, capabilityUpdate, detach, heartbeat } from '../../src/runtime-nodes/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import {
  GPU,
  addMemberAs,
  attachInput,
  attachmentRow,
  makeNode,
  makeParticipant,
  makeSession,
  presenceOf,
  tableSnapshot,
} from '../fixtures.js';

const t = useTestDatabase();

describe('runtimenode.detach', () => {
  it('P8 detach: active row → offline, presence → offline, null result, idempotent', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session));
    await capabilityUpdate(t.db, node, {
      nodeId: node.nodeId,
      capabilities: GPU,
      healthChanges: { state: 'online' },
    });
    await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' });

    await expect(
      detach(t.db, node, { nodeId: node.nodeId, reason: 'shutting down' }),
    ).resolves.toBeNull();
    expect((await attachmentRow(t.db, node.nodeId, session))?.state).toBe('offline');
    const presence = await presenceOf(t.db, node.nodeId);
    expect(presence?.health_state).toBe('offline');
    expect(presence?.online_since).toBeNull();

    const rowAfterFirst = await attachmentRow(t.db, node.nodeId, session);
    await expect(detach(t.db, node, { nodeId: node.nodeId })).resolves.toBeNull();
    await expect(detach(t.db, node, { nodeId: node.nodeId })).resolves.toBeNull();
    expect(await attachmentRow(t.db, node.nodeId, session)).toEqual(rowAfterFirst);

    const { rows } = await t.db.query<{ type: string; payload: Record<string, unknown> }>(
      `SELECT type, payload FROM fleet_events WHERE node_id = $1 AND type = 'runtimenode.detached'`,
      [node.nodeId],
    );
    expect(rows).toEqual([
      {
        type: 'runtimenode.detached',
        payload: {
          previousState: 'online',
          reason: 'shutting down',
          attachmentId: rowAfterFirst?.id,
          by: { kind: 'node', nodeId: node.nodeId },
        },
      },
    ]);
  });

  it('P8 detach never writes memberships and never revokes', async () => {
    const owner = await makeParticipant(t.db);
    const contributor = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    await addMemberAs(t.db, owner, session, contributor, 'runtime contributor');
    const node = await makeNode(t.db, contributor);
    await attach(t.db, node, attachInput(node, session));
    const memberships = await tableSnapshot(t.db, 'session_memberships');
    await detach(t.db, node, { nodeId: node.nodeId });
    expect(await tableSnapshot(t.db, 'session_memberships')).toEqual(memberships);
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM runtime_node_attachments WHERE state = 'revoked'`,
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('P8 detach of a node that never attached is a no-op null', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    await expect(detach(t.db, node, { nodeId: node.nodeId })).resolves.toBeNull();
    expect((await presenceOf(t.db, node.nodeId))?.health_state).toBe('offline');
  });

  it('a node cannot detach another node (auth.principal_mismatch)', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const a = await makeNode(t.db, owner);
    const b = await makeNode(t.db, owner);
    await attach(t.db, b, attachInput(b, session));
    await expectTetherError(detach(t.db, a, { nodeId: b.nodeId }), 'auth.principal_mismatch');
    expect((await attachmentRow(t.db, b.nodeId, session))?.state).toBe('registering');
  });
});
