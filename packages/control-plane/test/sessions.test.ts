import type { ParticipantId, SessionId } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import {
  addMember,
  createSession,
  getSession,
  listMembers,
  raiseFloor,
  removeMember,
  updateMember,
} from '../src/sessions/service.js';
import { useTestDatabase } from './db.js';
import { expectTetherError } from './expect-error.js';
import {
  addMemberAs,
  makeParticipant,
  makeSession,
  tableSnapshot,
  uniqueName,
} from './fixtures.js';

const t = useTestDatabase();

const MISSING_SESSION = '00000000-0000-4000-8000-000000000000' as SessionId;
const MISSING_PARTICIPANT = '00000000-0000-4000-8000-00000000ffff' as ParticipantId;

async function membershipRows(sessionId: string) {
  const { rows } = await t.db.query<{ participant_id: string; role: string; state: string }>(
    `SELECT participant_id, role, state FROM session_memberships WHERE session_id = $1 ORDER BY participant_id`,
    [sessionId],
  );
  return rows;
}

async function sessionRow(sessionId: string) {
  const { rows } = await t.db.query<{ min_node_version: string | null; updated_at: Date }>(
    `SELECT min_node_version, updated_at FROM sessions WHERE id = $1`,
    [sessionId],
  );
  return rows[0];
}

/** An owner, a session of theirs, a collaborator in it and a stranger outside it. */
async function cast(floor?: string) {
  const owner = await makeParticipant(t.db);
  const session = await makeSession(t.db, owner, floor);
  const collaborator = await makeParticipant(t.db);
  await addMemberAs(t.db, owner, session, collaborator, 'collaborator');
  const stranger = await makeParticipant(t.db);
  return { owner, session, collaborator, stranger };
}

describe('session.create', () => {
  it('makes the creator an active owner and stores the floor', async () => {
    const owner = await makeParticipant(t.db);
    const name = uniqueName('created');
    const view = await createSession(t.db, owner, { name, minNodeVersion: '1.2' });
    expect(view).toMatchObject({
      name,
      state: 'active',
      minNodeVersion: '1.2',
      createdBy: owner.participantId,
    });
    expect(await membershipRows(view.sessionId)).toEqual([
      { participant_id: owner.participantId, role: 'owner', state: 'active' },
    ]);
    expect((await sessionRow(view.sessionId))?.min_node_version).toBe('1.2');
  });

  it('stores a NULL floor when none is given', async () => {
    const owner = await makeParticipant(t.db);
    const view = await createSession(t.db, owner, { name: uniqueName('no-floor') });
    expect(view.minNodeVersion).toBeNull();
    const row = await sessionRow(view.sessionId);
    expect(row).toBeDefined();
    expect(row!.min_node_version).toBeNull();
  });

  it('session and owner membership are one transaction: if the membership insert fails, no session remains', async () => {
    const owner = await makeParticipant(t.db);
    const name = uniqueName('atomic');
    // Make only the owner-membership insert fail (NOT VALID: existing rows are not checked).
    await t.db.query(
      `ALTER TABLE session_memberships ADD CONSTRAINT test_refuse_owner CHECK (role <> 'owner') NOT VALID`,
    );
    try {
      await expectTetherError(createSession(t.db, owner, { name }), 'request.invalid');
    } finally {
      await t.db.query(`ALTER TABLE session_memberships DROP CONSTRAINT test_refuse_owner`);
    }
    const { rows } = await t.db.query(`SELECT 1 FROM sessions WHERE name = $1`, [name]);
    expect(rows).toHaveLength(0);
    // With the constraint gone the same call succeeds, so it was the membership insert that failed.
    expect((await createSession(t.db, owner, { name })).name).toBe(name);
  });

  it('every created session has exactly one membership row, the creator as owner', async () => {
    const owner = await makeParticipant(t.db);
    const ids = await Promise.all(Array.from({ length: 5 }, () => makeSession(t.db, owner)));
    for (const id of ids) {
      expect(await membershipRows(id)).toEqual([
        { participant_id: owner.participantId, role: 'owner', state: 'active' },
      ]);
    }
  });

  it('an invalid floor is request.invalid and creates nothing', async () => {
    const owner = await makeParticipant(t.db);
    for (const floor of ['01.0', '1', '1.2.3', 'v1.0', '', ' 1.0', `1${'0'.repeat(63)}.0`]) {
      const name = uniqueName('bad-floor');
      const error = await expectTetherError(
        createSession(t.db, owner, { name, minNodeVersion: floor }),
        'request.invalid',
      );
      expect(error.httpStatus, floor).toBe(400);
      const { rows } = await t.db.query(`SELECT 1 FROM sessions WHERE name = $1`, [name]);
      expect(rows, floor).toHaveLength(0);
    }
  });
});

describe('session.get', () => {
  it('an active member sees the session', async () => {
    const { owner, session, collaborator } = await cast('1.0');
    for (const who of [owner, collaborator]) {
      const view = await getSession(t.db, who, session);
      expect(view).toMatchObject({
        sessionId: session,
        minNodeVersion: '1.0',
        createdBy: owner.participantId,
      });
    }
  });

  it('a non-member and an unknown id both get session.not_found with identical messages', async () => {
    const { session, stranger } = await cast();
    const hidden = await expectTetherError(
      getSession(t.db, stranger, session),
      'session.not_found',
    );
    const missing = await expectTetherError(
      getSession(t.db, stranger, MISSING_SESSION),
      'session.not_found',
    );
    expect(hidden.message).toBe(missing.message);
    expect(hidden.details).toEqual(missing.details);
    expect(hidden.httpStatus).toBe(404);
  });

  it('an inactive (suspended) member is treated like a non-member', async () => {
    const { owner, session } = await cast();
    const suspended = await makeParticipant(t.db);
    await addMemberAs(t.db, owner, session, suspended, 'collaborator', 'suspended');
    await expectTetherError(getSession(t.db, suspended, session), 'session.not_found');
  });

  it('an admin sees any session without being a member', async () => {
    const { session } = await cast();
    const admin = await makeParticipant(t.db, 'admin');
    expect((await getSession(t.db, admin, session)).sessionId).toBe(session);
    await expectTetherError(getSession(t.db, admin, MISSING_SESSION), 'session.not_found');
  });
});

describe('membership management by role', () => {
  it('an owner can add, update and remove a member', async () => {
    const { owner, session } = await cast();
    const member = await makeParticipant(t.db);
    const added = await addMember(t.db, owner, {
      sessionId: session,
      participantId: member.participantId,
      role: 'viewer',
    });
    expect(added).toMatchObject({
      sessionId: session,
      participantId: member.participantId,
      role: 'viewer',
      state: 'active',
    });

    const updated = await updateMember(t.db, owner, {
      sessionId: session,
      participantId: member.participantId,
      role: 'runtime contributor',
    });
    expect(updated).toMatchObject({
      role: 'runtime contributor',
      state: 'active',
      membershipId: added.membershipId,
    });
    expect(
      (await membershipRows(session)).find((r) => r.participant_id === member.participantId)?.role,
    ).toBe('runtime contributor');

    expect(
      await removeMember(t.db, owner, { sessionId: session, participantId: member.participantId }),
    ).toBeNull();
    expect((await membershipRows(session)).map((r) => r.participant_id)).not.toContain(
      member.participantId,
    );
  });

  it('a collaborator gets session.permission_denied for add, update and remove, and nothing changes', async () => {
    const { owner, session, collaborator } = await cast();
    const target = await makeParticipant(t.db);
    const before = await membershipRows(session);
    for (const attempt of [
      () =>
        addMember(t.db, collaborator, {
          sessionId: session,
          participantId: target.participantId,
          role: 'viewer',
        }),
      () =>
        updateMember(t.db, collaborator, {
          sessionId: session,
          participantId: owner.participantId,
          role: 'viewer',
        }),
      () =>
        removeMember(t.db, collaborator, {
          sessionId: session,
          participantId: owner.participantId,
        }),
    ]) {
      const error = await expectTetherError(attempt(), 'session.permission_denied');
      expect(error.httpStatus).toBe(403);
    }
    expect(await membershipRows(session)).toEqual(before);
  });

  it('a stranger gets session.not_found for add, update and remove, and nothing changes', async () => {
    const { owner, session, stranger } = await cast();
    const before = await membershipRows(session);
    for (const attempt of [
      () =>
        addMember(t.db, stranger, {
          sessionId: session,
          participantId: stranger.participantId,
          role: 'owner',
        }),
      () =>
        updateMember(t.db, stranger, {
          sessionId: session,
          participantId: owner.participantId,
          role: 'viewer',
        }),
      () =>
        removeMember(t.db, stranger, { sessionId: session, participantId: owner.participantId }),
    ]) {
      await expectTetherError(attempt(), 'session.not_found');
    }
    expect(await membershipRows(session)).toEqual(before);
  });

  it('adding an existing member is membership.already_exists and leaves their membership as it was', async () => {
    const { owner, session, collaborator } = await cast();
    const before = await membershipRows(session);
    const error = await expectTetherError(
      addMember(t.db, owner, {
        sessionId: session,
        participantId: collaborator.participantId,
        role: 'viewer',
      }),
      'membership.already_exists',
    );
    expect(error.httpStatus).toBe(409);
    expect(await membershipRows(session)).toEqual(before);
  });

  it('adding an unknown participant is participant.not_found', async () => {
    const { owner, session } = await cast();
    const before = await membershipRows(session);
    await expectTetherError(
      addMember(t.db, owner, {
        sessionId: session,
        participantId: MISSING_PARTICIPANT,
        role: 'viewer',
      }),
      'participant.not_found',
    );
    expect(await membershipRows(session)).toEqual(before);
  });

  it('updating or removing a non-member is membership.not_found', async () => {
    const { owner, session, stranger } = await cast();
    const before = await membershipRows(session);
    await expectTetherError(
      updateMember(t.db, owner, {
        sessionId: session,
        participantId: stranger.participantId,
        role: 'viewer',
      }),
      'membership.not_found',
    );
    await expectTetherError(
      removeMember(t.db, owner, { sessionId: session, participantId: stranger.participantId }),
      'membership.not_found',
    );
    expect(await membershipRows(session)).toEqual(before);
  });
});

describe('membership.last_owner', () => {
  it('demoting, suspending or removing the last active owner is refused and nothing changes', async () => {
    const { owner, session } = await cast();
    const before = await tableSnapshot(t.db, 'session_memberships');
    for (const attempt of [
      () =>
        updateMember(t.db, owner, {
          sessionId: session,
          participantId: owner.participantId,
          role: 'collaborator',
        }),
      () =>
        updateMember(t.db, owner, {
          sessionId: session,
          participantId: owner.participantId,
          state: 'suspended',
        }),
      () => removeMember(t.db, owner, { sessionId: session, participantId: owner.participantId }),
    ]) {
      const error = await expectTetherError(attempt(), 'membership.last_owner');
      expect(error.httpStatus).toBe(409);
    }
    expect(await tableSnapshot(t.db, 'session_memberships')).toEqual(before);
  });

  it('an admin cannot remove the last owner either', async () => {
    const { owner, session } = await cast();
    const admin = await makeParticipant(t.db, 'admin');
    await expectTetherError(
      removeMember(t.db, admin, { sessionId: session, participantId: owner.participantId }),
      'membership.last_owner',
    );
    expect(
      (await membershipRows(session)).some((r) => r.participant_id === owner.participantId),
    ).toBe(true);
  });

  it('with two active owners one can be removed, and then the other is the last', async () => {
    const { owner, session } = await cast();
    const second = await makeParticipant(t.db);
    await addMemberAs(t.db, owner, session, second, 'owner');
    expect(
      await removeMember(t.db, second, { sessionId: session, participantId: owner.participantId }),
    ).toBeNull();
    const owners = (await membershipRows(session)).filter((r) => r.role === 'owner');
    expect(owners).toEqual([
      { participant_id: second.participantId, role: 'owner', state: 'active' },
    ]);
    await expectTetherError(
      removeMember(t.db, second, { sessionId: session, participantId: second.participantId }),
      'membership.last_owner',
    );
  });

  it('a suspended second owner does not count: the active one is still the last', async () => {
    const { owner, session } = await cast();
    const dormant = await makeParticipant(t.db);
    await addMemberAs(t.db, owner, session, dormant, 'owner', 'suspended');
    await expectTetherError(
      updateMember(t.db, owner, {
        sessionId: session,
        participantId: owner.participantId,
        role: 'viewer',
      }),
      'membership.last_owner',
    );
    expect(
      (await membershipRows(session)).find((r) => r.participant_id === owner.participantId)?.role,
    ).toBe('owner');
  });
});

describe('session.raiseFloor', () => {
  it('NULL → 1.2 → 1.10 rises numerically', async () => {
    const { owner, session } = await cast();
    expect(
      (await raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: '1.2' })).minNodeVersion,
    ).toBe('1.2');
    // Lexically "1.10" < "1.2"; numerically it is higher, so this is a raise.
    expect(
      (await raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: '1.10' }))
        .minNodeVersion,
    ).toBe('1.10');
    expect((await sessionRow(session))?.min_node_version).toBe('1.10');
  });

  it('1.10 → 1.9 is session.floor_not_monotonic (409) and the row is unchanged', async () => {
    const { owner, session } = await cast('1.10');
    const before = await sessionRow(session);
    const error = await expectTetherError(
      raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: '1.9' }),
      'session.floor_not_monotonic',
    );
    expect(error.httpStatus).toBe(409);
    expect(error.details).toEqual({ currentMinNodeVersion: '1.10' });
    expect(await sessionRow(session)).toEqual(before);
  });

  it('an equal floor is an idempotent no-op: updated_at does not move', async () => {
    const { owner, session } = await cast('2.5');
    const before = await sessionRow(session);
    const view = await raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: '2.5' });
    expect(view.minNodeVersion).toBe('2.5');
    expect(view.updatedAt).toEqual(before!.updated_at);
    expect(await sessionRow(session)).toEqual(before);
  });

  it('a real raise moves updated_at forward', async () => {
    const { owner, session } = await cast('2.5');
    const before = await sessionRow(session);
    await raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: '2.6' });
    const after = await sessionRow(session);
    expect(after!.updated_at.getTime()).toBeGreaterThan(before!.updated_at.getTime());
  });

  it('a non-owner member is session.permission_denied; a stranger session.not_found; the floor stays', async () => {
    const { session, collaborator, stranger } = await cast('1.0');
    const before = await sessionRow(session);
    await expectTetherError(
      raiseFloor(t.db, collaborator, { sessionId: session, minNodeVersion: '2.0' }),
      'session.permission_denied',
    );
    await expectTetherError(
      raiseFloor(t.db, stranger, { sessionId: session, minNodeVersion: '2.0' }),
      'session.not_found',
    );
    expect(await sessionRow(session)).toEqual(before);
  });

  it('a viewer member is session.permission_denied too', async () => {
    const { owner, session } = await cast('1.0');
    const viewer = await makeParticipant(t.db);
    await addMemberAs(t.db, owner, session, viewer, 'viewer');
    await expectTetherError(
      raiseFloor(t.db, viewer, { sessionId: session, minNodeVersion: '2.0' }),
      'session.permission_denied',
    );
    expect((await sessionRow(session))?.min_node_version).toBe('1.0');
  });

  it('malformed input is request.invalid and the floor stays', async () => {
    const { owner, session } = await cast('1.0');
    for (const floor of ['01.0', '2', '2.0.0', 'latest', '', `9${'9'.repeat(63)}.0`]) {
      await expectTetherError(
        raiseFloor(t.db, owner, { sessionId: session, minNodeVersion: floor }),
        'request.invalid',
      );
    }
    expect((await sessionRow(session))?.min_node_version).toBe('1.0');
  });
});

describe('membership.list', () => {
  it('a member sees every member, whatever their role or state', async () => {
    const { owner, session, collaborator } = await cast();
    const pending = await makeParticipant(t.db);
    await addMemberAs(t.db, owner, session, pending, 'viewer', 'pending');
    const { items } = await listMembers(t.db, collaborator, session);
    expect(
      items
        .map((m) => ({ participantId: m.participantId, role: m.role, state: m.state }))
        .sort((a, b) => a.participantId.localeCompare(b.participantId)),
    ).toEqual(
      [
        { participantId: owner.participantId, role: 'owner', state: 'active' },
        { participantId: collaborator.participantId, role: 'collaborator', state: 'active' },
        { participantId: pending.participantId, role: 'viewer', state: 'pending' },
      ].sort((a, b) => a.participantId.localeCompare(b.participantId)),
    );
    expect(items.every((m) => m.sessionId === session)).toBe(true);
  });

  it('a stranger gets session.not_found, with the same message as for a missing session', async () => {
    const { session, stranger } = await cast();
    const hidden = await expectTetherError(
      listMembers(t.db, stranger, session),
      'session.not_found',
    );
    const missing = await expectTetherError(
      listMembers(t.db, stranger, MISSING_SESSION),
      'session.not_found',
    );
    expect(hidden.message).toBe(missing.message);
  });
});
