/**
 * Sessions, memberships and floors. Invariants: the creator becomes the active owner in the same
 * transaction; floors only rise (`session.floor_not_monotonic`); a session always keeps at least
 * one active owner; non-members cannot tell a session exists (`session.not_found`).
 */
import {
  TetherError,
  compareEventEnvelopeVersion,
  fleetEvent,
  isEventEnvelopeVersion,
  type EventEnvelopeVersion,
  type MembershipAddInput,
  type MembershipUpdateInput,
  type MembershipView,
  type ParticipantId,
  type SessionId,
  type SessionView,
} from '@tether/contracts';
import { MembershipState, SessionRole } from '@tether/contracts';
import { z } from 'zod';
import type { ParticipantPrincipal } from '../auth/principal.js';
import { isAdmin } from '../auth/principal.js';
import { appendEvent } from '../events/append.js';
import type { Db, Sql } from '../db/pool.js';
import { cursorTimestamp, decodeCursor, pageLimit, toPage } from '../db/pagination.js';
import { parseRow } from '../db/rows.js';

const SESSION_COLUMNS = 'id, name, state, min_node_version, created_by, created_at, updated_at';

const SessionRow = z.object({
  id: z.string(),
  name: z.string(),
  state: z.string(),
  min_node_version: z.string().nullable(),
  created_by: z.string(),
  created_at: z.date(),
  updated_at: z.date(),
});

export function toSessionView(row: unknown): SessionView {
  const r = parseRow(SessionRow, row, 'session');
  return {
    sessionId: r.id as SessionId,
    name: r.name,
    state: r.state,
    // A malformed floor is reported as stored; writes against it fail with version.floor_malformed.
    minNodeVersion: r.min_node_version as SessionView['minNodeVersion'],
    createdBy: r.created_by as ParticipantId,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const MEMBERSHIP_COLUMNS = 'id, session_id, participant_id, role, state, joined_at, updated_at';

const MembershipRow = z.object({
  id: z.string(),
  session_id: z.string(),
  participant_id: z.string(),
  role: SessionRole,
  state: MembershipState,
  joined_at: z.date(),
  updated_at: z.date(),
});

function toMembershipView(row: unknown): MembershipView {
  const r = parseRow(MembershipRow, row, 'membership');
  return {
    membershipId: r.id,
    sessionId: r.session_id as SessionId,
    participantId: r.participant_id as ParticipantId,
    role: r.role,
    state: r.state,
    joinedAt: r.joined_at,
    updatedAt: r.updated_at,
  };
}

export async function createSession(
  db: Db,
  actor: ParticipantPrincipal,
  input: { name: string; minNodeVersion?: string | undefined },
): Promise<SessionView> {
  if (input.minNodeVersion !== undefined && !isEventEnvelopeVersion(input.minNodeVersion)) {
    throw new TetherError('request.invalid', 'minNodeVersion must be MAJOR.MINOR.');
  }
  return db.tx(async (sql) => {
    const { rows } = await sql.query(
      `INSERT INTO sessions (name, min_node_version, created_by) VALUES ($1, $2, $3) RETURNING ${SESSION_COLUMNS}`,
      [input.name, input.minNodeVersion ?? null, actor.participantId],
    );
    const session = toSessionView(rows[0]);
    await sql.query(
      `INSERT INTO session_memberships (session_id, participant_id, role, state) VALUES ($1, $2, 'owner', 'active')`,
      [session.sessionId, actor.participantId],
    );
    return session;
  });
}

interface Access {
  role: string | null;
  state: string | null;
}

/** The caller's membership in a session, or `session.not_found` if it does not exist for them. */
async function loadAccess(
  sql: Sql,
  actor: ParticipantPrincipal,
  sessionId: string,
  lock: '' | 'FOR UPDATE OF s' = '',
): Promise<{ session: SessionView; access: Access }> {
  const { rows } = await sql.query<Record<string, unknown>>(
    `SELECT s.id, s.name, s.state, s.min_node_version, s.created_by, s.created_at, s.updated_at,
            m.role AS member_role, m.state AS member_state
       FROM sessions s
       LEFT JOIN session_memberships m ON m.session_id = s.id AND m.participant_id = $2
      WHERE s.id = $1 ${lock}`,
    [sessionId, actor.participantId],
  );
  const row = rows[0];
  const member = row !== undefined && row.member_state === 'active';
  if (!row || (!member && !isAdmin(actor))) {
    throw new TetherError('session.not_found', 'No such session.');
  }
  const { member_role, member_state, ...sessionRow } = row;
  return {
    session: toSessionView(sessionRow),
    access: {
      role: (member_role as string | null) ?? null,
      state: (member_state as string | null) ?? null,
    },
  };
}

function isActiveOwner(actor: ParticipantPrincipal, access: Access): boolean {
  return isAdmin(actor) || (access.role === 'owner' && access.state === 'active');
}

async function requireOwner(
  sql: Sql,
  actor: ParticipantPrincipal,
  sessionId: string,
  lock: '' | 'FOR UPDATE OF s' = '',
): Promise<SessionView> {
  const { session, access } = await loadAccess(sql, actor, sessionId, lock);
  if (!isActiveOwner(actor, access)) {
    throw new TetherError('session.permission_denied', 'Only a session owner may do this.');
  }
  return session;
}

export async function getSession(
  db: Db,
  actor: ParticipantPrincipal,
  sessionId: string,
): Promise<SessionView> {
  return (await loadAccess(db, actor, sessionId)).session;
}

export async function raiseFloor(
  db: Db,
  actor: ParticipantPrincipal,
  input: { sessionId: string; minNodeVersion: string },
): Promise<SessionView> {
  if (!isEventEnvelopeVersion(input.minNodeVersion)) {
    throw new TetherError('request.invalid', 'minNodeVersion must be MAJOR.MINOR.');
  }
  return db.tx(async (sql) => {
    const session = await requireOwner(sql, actor, input.sessionId, 'FOR UPDATE OF s');
    const current = session.minNodeVersion;
    // A malformed stored floor cannot be compared; any valid floor replaces it (the repair path).
    if (current !== null && isEventEnvelopeVersion(current)) {
      const order = compareEventEnvelopeVersion(input.minNodeVersion, current);
      if (order < 0) {
        throw new TetherError('session.floor_not_monotonic', 'The floor can only be raised.', {
          currentMinNodeVersion: current,
        });
      }
      if (order === 0) return session;
    }
    const { rows } = await sql.query(
      `UPDATE sessions SET min_node_version = $2, updated_at = now() WHERE id = $1 RETURNING ${SESSION_COLUMNS}`,
      [input.sessionId, input.minNodeVersion],
    );
    await appendEvent(
      sql,
      fleetEvent('session.floor_raised', {
        from: current,
        // Checked by isEventEnvelopeVersion above.
        to: input.minNodeVersion as EventEnvelopeVersion,
        by: actor.participantId,
      }),
      { sessionId: input.sessionId },
    );
    return toSessionView(rows[0]);
  });
}

/** Fails if, after the pending change, the session would have no active owner. */
async function assertOwnerRemains(sql: Sql, sessionId: string): Promise<void> {
  const { rows } = await sql.query<{ owners: number }>(
    `SELECT count(*)::int AS owners FROM session_memberships
      WHERE session_id = $1 AND role = 'owner' AND state = 'active'`,
    [sessionId],
  );
  if ((rows[0]?.owners ?? 0) === 0) {
    throw new TetherError(
      'membership.last_owner',
      'A session must keep at least one active owner.',
    );
  }
}

export async function addMember(
  db: Db,
  actor: ParticipantPrincipal,
  input: MembershipAddInput,
): Promise<MembershipView> {
  return db.tx(async (sql) => {
    await requireOwner(sql, actor, input.sessionId, 'FOR UPDATE OF s');
    const { rows } = await sql.query(
      `INSERT INTO session_memberships (session_id, participant_id, role, state)
       VALUES ($1, $2, $3, $4) RETURNING ${MEMBERSHIP_COLUMNS}`,
      [input.sessionId, input.participantId, input.role, input.state ?? 'active'],
    );
    return toMembershipView(rows[0]);
  });
}

export async function updateMember(
  db: Db,
  actor: ParticipantPrincipal,
  input: MembershipUpdateInput,
): Promise<MembershipView> {
  return db.tx(async (sql) => {
    await requireOwner(sql, actor, input.sessionId, 'FOR UPDATE OF s');
    const { rows } = await sql.query(
      `UPDATE session_memberships
          SET role = COALESCE($3, role), state = COALESCE($4, state), updated_at = now()
        WHERE session_id = $1 AND participant_id = $2
        RETURNING ${MEMBERSHIP_COLUMNS}`,
      [input.sessionId, input.participantId, input.role ?? null, input.state ?? null],
    );
    if (!rows[0])
      throw new TetherError(
        'membership.not_found',
        'The participant is not a member of the session.',
      );
    await assertOwnerRemains(sql, input.sessionId);
    return toMembershipView(rows[0]);
  });
}

export async function removeMember(
  db: Db,
  actor: ParticipantPrincipal,
  input: { sessionId: string; participantId: string },
): Promise<null> {
  return db.tx(async (sql) => {
    await requireOwner(sql, actor, input.sessionId, 'FOR UPDATE OF s');
    const { rowCount } = await sql.query(
      `DELETE FROM session_memberships WHERE session_id = $1 AND participant_id = $2`,
      [input.sessionId, input.participantId],
    );
    if (rowCount === 0)
      throw new TetherError(
        'membership.not_found',
        'The participant is not a member of the session.',
      );
    await assertOwnerRemains(sql, input.sessionId);
    return null;
  });
}

export async function listMembers(
  db: Db,
  actor: ParticipantPrincipal,
  sessionId: string,
): Promise<{ items: MembershipView[] }> {
  await loadAccess(db, actor, sessionId);
  const { rows } = await db.query(
    `SELECT ${MEMBERSHIP_COLUMNS} FROM session_memberships WHERE session_id = $1 ORDER BY joined_at, id`,
    [sessionId],
  );
  return { items: rows.map(toMembershipView) };
}

/** Membership check used by session-scoped reads (roster): any active member, or an admin. */
export async function requireMember(
  sql: Sql,
  actor: ParticipantPrincipal,
  sessionId: string,
): Promise<SessionView> {
  return (await loadAccess(sql, actor, sessionId)).session;
}

/** Sessions the caller is an active member of (all sessions for an admin), oldest first. */
export async function listSessions(
  db: Db,
  actor: ParticipantPrincipal,
  input: { cursor?: string | undefined; limit?: number | undefined },
): Promise<{ items: SessionView[]; nextCursor: string | null }> {
  const limit = pageLimit(input.limit);
  const after = decodeCursor('session', input.cursor);
  const { rows } = await db.query<Record<string, unknown> & { cursor_at: string; id: string }>(
    `SELECT ${SESSION_COLUMNS}, ${cursorTimestamp('s.created_at')} AS cursor_at FROM sessions s
      WHERE ($1::boolean OR EXISTS (SELECT 1 FROM session_memberships m
                                     WHERE m.session_id = s.id AND m.participant_id = $2 AND m.state = 'active'))
        AND ($3::timestamptz IS NULL OR (s.created_at, s.id) > ($3::timestamptz, $4::uuid))
      ORDER BY s.created_at, s.id
      LIMIT $5`,
    [isAdmin(actor), actor.participantId, after?.[0] ?? null, after?.[1] ?? null, limit + 1],
  );
  return toPage(rows, limit, toSessionView, 'session', (r) => [r.cursor_at, r.id]);
}
