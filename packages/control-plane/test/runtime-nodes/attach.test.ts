import type { TetherError } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { attach, detach, revokeAttachment } from '../../src/runtime-nodes/service.js';
import { raiseFloor } from '../../src/sessions/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import {
  addMemberAs,
  attachInput,
  attachmentRow,
  makeNode,
  makeParticipant,
  makeSession,
  tableSnapshot,
} from '../fixtures.js';

const t = useTestDatabase();

const expectCode = expectTetherError;

describe('runtimenode.attach', () => {
  it('P1 NULL floor admits every version read-write, starting registering', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    for (const nodeVersion of ['0.0', '0.1', '1.0', '99.99']) {
      const node = await makeNode(t.db, owner);
      const result = await attach(t.db, node, attachInput(node, session, { nodeVersion }));
      expect(result.readOnly).toBe(false);
      expect(result.state).toBe('registering');
      expect(result.attachmentId).toMatch(/^[0-9a-f-]{36}$/);
      expect(result.attachedAt).toBeInstanceOf(Date);
    }
  });

  it('P2 a client at or above the floor is read-write', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner, '2.3');
    for (const nodeVersion of ['2.3', '2.4', '2.10', '3.0', '10.0']) {
      const node = await makeNode(t.db, owner);
      const result = await attach(t.db, node, attachInput(node, session, { nodeVersion }));
      expect(result, nodeVersion).toMatchObject({ readOnly: false, state: 'registering' });
    }
  });

  it('P3 a client below the floor is admitted read-only, compared numerically', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner, '1.10');
    // Lexically "1.9" > "1.10"; numerically it is below, so read-only.
    for (const [nodeVersion, readOnly] of [
      ['1.9', true],
      ['1.2', true],
      ['0.99', true],
      ['1.10', false],
      ['1.11', false],
    ] as const) {
      const node = await makeNode(t.db, owner);
      const result = await attach(t.db, node, attachInput(node, session, { nodeVersion }));
      expect({ nodeVersion, readOnly: result.readOnly, state: result.state }).toEqual({
        nodeVersion,
        readOnly,
        state: 'registering',
      });
    }
    const session10 = await makeSession(t.db, owner, '10.0');
    const old = await makeNode(t.db, owner);
    expect(
      (await attach(t.db, old, attachInput(old, session10, { nodeVersion: '9.9' }))).readOnly,
    ).toBe(true);
  });

  it('P3 a malformed stored floor throws version.floor_malformed instead of admitting', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    // Simulate a row written by something that bypassed the schema's CHECK.
    await t.db.query(`ALTER TABLE sessions DROP CONSTRAINT sessions_min_node_version_format`);
    try {
      await t.db.query(`UPDATE sessions SET min_node_version = '1.x' WHERE id = $1`, [session]);
      const node = await makeNode(t.db, owner);
      await expectCode(attach(t.db, node, attachInput(node, session)), 'version.floor_malformed');
      expect(await attachmentRow(t.db, node.nodeId, session)).toBeUndefined();
    } finally {
      await t.db.query(
        `UPDATE sessions SET min_node_version = NULL WHERE min_node_version = '1.x'`,
      );
      await t.db.query(
        `ALTER TABLE sessions ADD CONSTRAINT sessions_min_node_version_format
           CHECK (min_node_version ~ '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)$' AND char_length(min_node_version) <= 64)`,
      );
    }
  });

  it('P5 many nodes attach to one session and the session row is untouched', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const before = (await tableSnapshot(t.db, 'sessions')).find((s) => s.id === session);
    const nodes = await Promise.all(Array.from({ length: 12 }, () => makeNode(t.db, owner)));
    const results = await Promise.all(nodes.map((n) => attach(t.db, n, attachInput(n, session))));
    expect(new Set(results.map((r) => r.attachmentId)).size).toBe(12);
    const after = (await tableSnapshot(t.db, 'sessions')).find((s) => s.id === session);
    expect(after).toEqual(before);
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM runtime_node_attachments WHERE session_id = $1 AND state = 'registering'`,
      [session],
    );
    expect(rows[0]!.n).toBe(12);
  });

  it('P7 attach, re-attach and detach never write session_memberships', async () => {
    const owner = await makeParticipant(t.db);
    const contributor = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    await addMemberAs(t.db, owner, session, contributor, 'runtime contributor');
    const node = await makeNode(t.db, contributor);
    const before = await tableSnapshot(t.db, 'session_memberships');
    await attach(t.db, node, attachInput(node, session));
    await detach(t.db, node, { nodeId: node.nodeId });
    await attach(t.db, node, attachInput(node, session));
    const after = await tableSnapshot(t.db, 'session_memberships');
    expect(after.length).toBe(before.length);
    expect(after).toEqual(before);
  });

  it('P9 single active attachment: a second session is refused with attach_conflict from the index', async () => {
    const owner = await makeParticipant(t.db);
    const first = await makeSession(t.db, owner);
    const second = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, first));
    const error = await expectCode(
      attach(t.db, node, attachInput(node, second)),
      'runtimenode.attach_conflict',
    );
    expect(error.httpStatus).toBe(409);
    expect(await attachmentRow(t.db, node.nodeId, second)).toBeUndefined();
    expect((await attachmentRow(t.db, node.nodeId, first))?.state).toBe('registering');
  });

  it('P9 the conflict comes from the partial unique index, not a pre-check', async () => {
    const owner = await makeParticipant(t.db);
    const [a, b] = [await makeSession(t.db, owner), await makeSession(t.db, owner)];
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, a));
    const raw = await t.db
      .query(
        `INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, node_version, state)
         VALUES ($1, $2, $3, '1.0', 'online')`,
        [b, owner.participantId, node.nodeId],
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((raw as TetherError).code).toBe('runtimenode.attach_conflict');
  });

  it('P9 after detach the node may attach elsewhere; re-attaching the same session reactivates the row', async () => {
    const owner = await makeParticipant(t.db);
    const first = await makeSession(t.db, owner);
    const second = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    const original = await attach(t.db, node, attachInput(node, first));
    await detach(t.db, node, { nodeId: node.nodeId });
    expect((await attachmentRow(t.db, node.nodeId, first))?.state).toBe('offline');

    const again = await attach(t.db, node, attachInput(node, first));
    expect(again.attachmentId).toBe(original.attachmentId);
    expect(again.attachedAt).toEqual(original.attachedAt);
    expect(again.state).toBe('registering');
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM runtime_node_attachments WHERE node_id = $1`,
      [node.nodeId],
    );
    expect(rows[0]!.n).toBe(1);

    await detach(t.db, node, { nodeId: node.nodeId });
    const elsewhere = await attach(t.db, node, attachInput(node, second));
    expect(elsewhere.state).toBe('registering');
  });

  it('P10 a revoked attachment refuses re-attach with attach_revoked and stays revoked', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const other = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    await attach(t.db, node, attachInput(node, session));
    await revokeAttachment(t.db, owner, { sessionId: session, nodeId: node.nodeId });
    const revoked = await attachmentRow(t.db, node.nodeId, session);
    expect(revoked?.state).toBe('revoked');

    await expectCode(attach(t.db, node, attachInput(node, session)), 'runtimenode.attach_revoked');
    await expectCode(attach(t.db, node, attachInput(node, session)), 'runtimenode.attach_revoked');
    expect(await attachmentRow(t.db, node.nodeId, session)).toEqual(revoked);
    // The identity is intact: other sessions still accept it.
    expect((await attach(t.db, node, attachInput(node, other))).state).toBe('registering');
  });

  it('non-member, viewer, inactive member and unknown session all get permission_denied alike', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const stranger = await makeParticipant(t.db);
    const viewer = await makeParticipant(t.db);
    const suspended = await makeParticipant(t.db);
    await addMemberAs(t.db, owner, session, viewer, 'viewer');
    await addMemberAs(t.db, owner, session, suspended, 'collaborator', 'suspended');
    const messages = new Set<string>();
    for (const who of [stranger, viewer, suspended]) {
      const node = await makeNode(t.db, who);
      const e = await expectCode(
        attach(t.db, node, attachInput(node, session)),
        'runtimenode.permission_denied',
      );
      messages.add(e.message);
    }
    const node = await makeNode(t.db, owner);
    const missing = '00000000-0000-4000-8000-000000000000' as typeof session;
    const e = await expectCode(
      attach(t.db, node, attachInput(node, missing)),
      'runtimenode.permission_denied',
    );
    messages.add(e.message);
    expect(messages.size).toBe(1);
  });

  it('collaborators and runtime contributors may attach their nodes', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    for (const role of ['collaborator', 'runtime contributor'] as const) {
      const member = await makeParticipant(t.db);
      await addMemberAs(t.db, owner, session, member, role);
      const node = await makeNode(t.db, member);
      expect((await attach(t.db, node, attachInput(node, session))).state).toBe('registering');
    }
  });

  it('body identity must match the credential (auth.principal_mismatch)', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    const other = await makeNode(t.db, owner);
    await expectCode(
      attach(t.db, node, { ...attachInput(node, session), nodeId: other.nodeId }),
      'auth.principal_mismatch',
    );
    const stranger = await makeParticipant(t.db);
    await expectCode(
      attach(t.db, node, { ...attachInput(node, session), participantId: stranger.participantId }),
      'auth.principal_mismatch',
    );
  });

  it('a floor raised to exactly the node version keeps it read-write on re-attach', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner, '1.0');
    await raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: '1.5' });
    const node = await makeNode(t.db, owner);
    expect(
      (await attach(t.db, node, attachInput(node, session, { nodeVersion: '1.5' }))).readOnly,
    ).toBe(false);
  });

  it('with healthChanges: online in the same call, the events as attach then capabilityupdate would tell it', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    const { rows: head } = await t.db.query<{ id: string }>(
      `SELECT COALESCE(max(id), 0)::text AS id FROM fleet_events`,
    );
    const result = await attach(t.db, node, {
      ...attachInput(node, session),
      healthChanges: { state: 'online', reason: 'ready' },
    });
    expect(result).toMatchObject({ state: 'online', readOnly: false });
    expect((await attachmentRow(t.db, node.nodeId, session))?.state).toBe('online');
    const { rows } = await t.db.query<{ type: string; payload: Record<string, unknown> }>(
      `SELECT type, payload FROM fleet_events WHERE id > $1 AND node_id = $2 ORDER BY id`,
      [head[0]!.id, node.nodeId],
    );
    expect(rows.map((r) => r.type)).toEqual([
      'presence.changed',
      'runtimenode.attached',
      'runtimenode.state_changed',
    ]);
    expect(rows[1]!.payload).toMatchObject({ state: 'registering', previousState: null });
    expect(rows[2]!.payload).toEqual({ from: 'registering', to: 'online', reason: 'ready' });

    // Again, degraded: the active row moves on from where it was; nothing else is written twice.
    const again = await attach(t.db, node, {
      ...attachInput(node, session),
      healthChanges: { state: 'degraded' },
    });
    expect(again.state).toBe('degraded');
  });

  it('with healthChanges: no capabilities is capabilityupdate_conflict before any write; read-only stays registering', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner, '2.0');
    const bare = await makeNode(t.db, owner);
    await expectCode(
      attach(t.db, bare, {
        ...attachInput(bare, session, { nodeVersion: '2.0', capabilities: {} }),
        healthChanges: { state: 'online' },
      }),
      'runtimenode.capabilityupdate_conflict',
    );
    expect(await attachmentRow(t.db, bare.nodeId, session)).toBeUndefined();

    const old = await makeNode(t.db, owner);
    const readOnly = await attach(t.db, old, {
      ...attachInput(old, session, { nodeVersion: '1.9' }),
      healthChanges: { state: 'online' },
    });
    expect(readOnly).toMatchObject({ state: 'registering', readOnly: true });
    expect((await attachmentRow(t.db, old.nodeId, session))?.state).toBe('registering');
  });
});
