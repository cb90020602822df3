import type { NodeId } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import type { NodePrincipal } from '../../src/auth/principal.js';
import { RevocationBus, type Revocation } from '../../src/auth/revocations.js';
import { generateToken, hashToken } from '../../src/auth/tokens.js';
import { getNode } from '../../src/nodes/queries.js';
import { registerNode, revokeNode, rotateNodeToken, updateNode } from '../../src/nodes/service.js';
import { attach, detach } from '../../src/runtime-nodes/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import {
  addMemberAs,
  attachInput,
  attachmentRow,
  makeNode,
  makeParticipant,
  makeSession,
  presenceOf,
  uniqueName,
} from '../fixtures.js';

const t = useTestDatabase();

async function events(nodeId: string) {
  const { rows } = await t.db.query<{
    type: string;
    session_id: string | null;
    payload: Record<string, unknown>;
  }>(`SELECT type, session_id, payload FROM fleet_events WHERE node_id = $1 ORDER BY id`, [nodeId]);
  return rows;
}

function recordingBus() {
  const bus = new RevocationBus();
  const published: Revocation[] = [];
  bus.subscribe((r) => published.push(r));
  return { bus, published };
}

async function nodeWithToken(owner: { participantId: string }) {
  const token = generateToken('tnd_');
  const registered = await registerNode(t.db, {
    nodeId: uniqueName('n'),
    ownerParticipantId: owner.participantId as never,
    name: 'node',
    nodeType: 'daemon',
    tokenHash: hashToken(token),
  });
  const principal: NodePrincipal = {
    kind: 'node',
    nodeId: registered.nodeId,
    ownerParticipantId: registered.ownerParticipantId,
    credentialHash: hashToken(token).toString('hex'),
  };
  return { principal, token };
}

async function tokenHashOf(nodeId: string): Promise<Buffer | null> {
  const { rows } = await t.db.query<{ token_hash: Buffer | null }>(
    `SELECT token_hash FROM nodes WHERE node_id = $1`,
    [nodeId],
  );
  return rows[0]!.token_hash;
}

describe('node.update', () => {
  it('changes name, location, labels and metadata and writes node.updated listing exactly the changed fields', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    const view = await updateNode(t.db, owner, {
      nodeId: node.nodeId,
      name: 'Kitchen Mac',
      location: 'Berlin',
      labels: { env: 'prod', rack: 'r1' },
      metadata: { serial: 'C02X', specs: { cores: 8 } },
    });
    expect(view).toMatchObject({
      nodeId: node.nodeId,
      name: 'Kitchen Mac',
      location: 'Berlin',
      labels: { env: 'prod', rack: 'r1' },
      metadata: { serial: 'C02X', specs: { cores: 8 } },
    });
    expect(await getNode(t.db, owner, node.nodeId)).toEqual(view);

    // Same labels in another key order and a changed name: only the name is reported.
    await updateNode(t.db, owner, {
      nodeId: node.nodeId,
      name: 'Office Mac',
      labels: { rack: 'r1', env: 'prod' },
    });
    const updates = (await events(node.nodeId)).filter((e) => e.type === 'node.updated');
    expect(updates.map((e) => (e.payload as { changed: string[] }).changed)).toEqual([
      ['name', 'location', 'labels', 'metadata'],
      ['name'],
    ]);
    expect(updates[0]!.payload.by).toEqual({
      kind: 'participant',
      participantId: owner.participantId,
    });
  });

  it('location: null clears it; omitted fields are kept; labels are replaced as a whole', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    await updateNode(t.db, owner, {
      nodeId: node.nodeId,
      location: 'Lab 2',
      labels: { a: '1', b: '2' },
    });
    const cleared = await updateNode(t.db, owner, {
      nodeId: node.nodeId,
      location: null,
      labels: { b: '3' },
    });
    expect(cleared.location).toBeNull();
    expect(cleared.labels).toEqual({ b: '3' });
    expect(cleared.name).toBe('test node');
  });

  it('an update that changes nothing writes nothing: no event, updatedAt unchanged', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    const first = await updateNode(t.db, owner, {
      nodeId: node.nodeId,
      name: 'same',
      metadata: { a: [1, 2] },
    });
    const again = await updateNode(t.db, owner, {
      nodeId: node.nodeId,
      name: 'same',
      metadata: { a: [1, 2] },
    });
    expect(again.updatedAt).toEqual(first.updatedAt);
    expect((await events(node.nodeId)).filter((e) => e.type === 'node.updated')).toHaveLength(1);
  });

  it('owner or admin only: a co-member gets auth.forbidden, a stranger node.not_found, an admin succeeds', async () => {
    const owner = await makeParticipant(t.db);
    const member = await makeParticipant(t.db);
    const stranger = await makeParticipant(t.db);
    const admin = await makeParticipant(t.db, 'admin');
    const session = await makeSession(t.db, owner);
    await addMemberAs(t.db, owner, session, member, 'collaborator');
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session));

    const forbidden = await expectTetherError(
      updateNode(t.db, member, { nodeId: node.nodeId, name: 'x' }),
      'auth.forbidden',
    );
    expect(forbidden.httpStatus).toBe(403);
    await expectTetherError(
      updateNode(t.db, stranger, { nodeId: node.nodeId, name: 'x' }),
      'node.not_found',
    );
    await expectTetherError(
      updateNode(t.db, owner, { nodeId: uniqueName('missing') as NodeId, name: 'x' }),
      'node.not_found',
    );
    await expect(
      updateNode(t.db, admin, { nodeId: node.nodeId, name: 'by admin' }),
    ).resolves.toMatchObject({ name: 'by admin' });
    expect((await getNode(t.db, owner, node.nodeId)).name).toBe('by admin');
  });

  it('a revoked node cannot be updated (node.not_found with status revoked), and nothing changes', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    await revokeNode(t.db, owner, { nodeId: node.nodeId }, new RevocationBus());
    const e = await expectTetherError(
      updateNode(t.db, owner, { nodeId: node.nodeId, name: 'zombie' }),
      'node.not_found',
    );
    expect(e.details).toEqual({ status: 'revoked' });
    expect((await getNode(t.db, owner, node.nodeId)).name).toBe('test node');
  });
});

describe('node.revoke', () => {
  it('terminal: status revoked, token hash kept, every attachment revoked, presence offline, events, bus after commit', async () => {
    const owner = await makeParticipant(t.db);
    const first = await makeSession(t.db, owner);
    const second = await makeSession(t.db, owner);
    const { principal: node, token } = await nodeWithToken(owner);
    await attach(t.db, node, attachInput(node, first));
    await detach(t.db, node, { nodeId: node.nodeId });
    await attach(t.db, node, attachInput(node, second));
    expect((await presenceOf(t.db, node.nodeId))?.health_state).toBe('online');
    const before = (await events(node.nodeId)).length;

    const { bus, published } = recordingBus();
    await expect(revokeNode(t.db, owner, { nodeId: node.nodeId }, bus)).resolves.toBeNull();

    const view = await getNode(t.db, owner, node.nodeId);
    expect(view.status).toBe('revoked');
    expect(view.revokedAt).not.toBeNull();
    expect(view.activeAttachment).toBeNull();
    expect(view.presence).toEqual({
      healthState: 'offline',
      lastHeartbeatAt: view.presence.lastHeartbeatAt,
      onlineSince: null,
    });
    expect((await tokenHashOf(node.nodeId))?.equals(hashToken(token))).toBe(true);
    expect((await attachmentRow(t.db, node.nodeId, first))?.state).toBe('revoked');
    expect((await attachmentRow(t.db, node.nodeId, second))?.state).toBe('revoked');

    const written = (await events(node.nodeId)).slice(before);
    // Presence first: every row lock is taken before the first event (feed ids in commit order).
    expect(written.map((e) => e.type)).toEqual([
      'presence.changed',
      'node.revoked',
      'runtimenode.revoked',
      'runtimenode.revoked',
    ]);
    expect(written[1]!.payload).toEqual({
      by: { kind: 'participant', participantId: owner.participantId },
      attachmentsRevoked: 2,
    });
    expect(
      written
        .filter((e) => e.type === 'runtimenode.revoked')
        .map((e) => e.session_id)
        .sort(),
    ).toEqual([first, second].sort());
    expect(written[0]!.payload).toEqual({ from: 'online', to: 'offline', cause: 'revoke' });
    expect(published).toEqual([
      {
        credentialHashes: [hashToken(token).toString('hex')],
        nodeId: node.nodeId,
        reason: 'node_revoked',
      },
    ]);
  });

  it('a revoked node can no longer attach anywhere', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await revokeNode(t.db, owner, { nodeId: node.nodeId }, new RevocationBus());
    await expectTetherError(attach(t.db, node, attachInput(node, session)), 'auth.unauthenticated');
  });

  it('revoking an already revoked node is a no-op: null, no new events, nothing published', async () => {
    const owner = await makeParticipant(t.db);
    const { principal: node } = await nodeWithToken(owner);
    await revokeNode(t.db, owner, { nodeId: node.nodeId }, new RevocationBus());
    const before = await events(node.nodeId);
    const { bus, published } = recordingBus();
    await expect(revokeNode(t.db, owner, { nodeId: node.nodeId }, bus)).resolves.toBeNull();
    expect(await events(node.nodeId)).toEqual(before);
    expect(published).toEqual([]);
  });

  it('owner or admin only: a co-member gets auth.forbidden, a stranger node.not_found; nothing changes', async () => {
    const owner = await makeParticipant(t.db);
    const member = await makeParticipant(t.db);
    const stranger = await makeParticipant(t.db);
    const admin = await makeParticipant(t.db, 'admin');
    const session = await makeSession(t.db, owner);
    await addMemberAs(t.db, owner, session, member, 'owner');
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session));
    const { bus, published } = recordingBus();

    await expectTetherError(
      revokeNode(t.db, member, { nodeId: node.nodeId }, bus),
      'auth.forbidden',
    );
    await expectTetherError(
      revokeNode(t.db, stranger, { nodeId: node.nodeId }, bus),
      'node.not_found',
    );
    await expectTetherError(
      revokeNode(t.db, owner, { nodeId: uniqueName('missing') }, bus),
      'node.not_found',
    );
    expect((await getNode(t.db, owner, node.nodeId)).status).toBe('active');
    expect((await attachmentRow(t.db, node.nodeId, session))?.state).toBe('registering');
    expect(published).toEqual([]);

    await revokeNode(t.db, admin, { nodeId: node.nodeId }, bus);
    expect((await getNode(t.db, owner, node.nodeId)).status).toBe('revoked');
    expect(published).toHaveLength(1);
  });
});

describe('node.rotateToken', () => {
  it('replaces the token hash atomically, audits it and publishes the old hash as token_rotated', async () => {
    const owner = await makeParticipant(t.db);
    const { principal, token } = await nodeWithToken(owner);
    const { bus, published } = recordingBus();
    const { nodeToken } = await rotateNodeToken(t.db, principal, bus);
    expect(nodeToken.startsWith('tnd_')).toBe(true);
    expect(nodeToken).not.toBe(token);
    expect((await tokenHashOf(principal.nodeId))?.equals(hashToken(nodeToken))).toBe(true);
    expect(published).toEqual([
      {
        credentialHashes: [hashToken(token).toString('hex')],
        nodeId: principal.nodeId,
        reason: 'token_rotated',
      },
    ]);
    const audit = (await events(principal.nodeId)).filter((e) => e.type === 'node.updated');
    expect(audit.map((e) => e.payload)).toEqual([
      { changed: ['token'], by: { kind: 'node', nodeId: principal.nodeId } },
    ]);
  });

  it('a stale credential (already rotated away) cannot rotate again: auth.unauthenticated, token unchanged', async () => {
    const owner = await makeParticipant(t.db);
    const { principal } = await nodeWithToken(owner);
    const { nodeToken } = await rotateNodeToken(t.db, principal, new RevocationBus());
    const { bus, published } = recordingBus();
    await expectTetherError(rotateNodeToken(t.db, principal, bus), 'auth.unauthenticated');
    expect((await tokenHashOf(principal.nodeId))?.equals(hashToken(nodeToken))).toBe(true);
    expect(published).toEqual([]);
  });

  it('a revoked node cannot rotate its token', async () => {
    const owner = await makeParticipant(t.db);
    const { principal, token } = await nodeWithToken(owner);
    await revokeNode(t.db, owner, { nodeId: principal.nodeId }, new RevocationBus());
    await expectTetherError(
      rotateNodeToken(t.db, principal, new RevocationBus()),
      'auth.unauthenticated',
    );
    expect((await tokenHashOf(principal.nodeId))?.equals(hashToken(token))).toBe(true);
  });
});
