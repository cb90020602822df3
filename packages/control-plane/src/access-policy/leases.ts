/**
 * Leases: exclusive use of a `leased` capability, one holder at a time, with an expiry.
 *
 * Invariants:
 *  - at most one active lease (ended_at IS NULL) per node × capability: the partial unique index
 *    `capability_leases_one_active` decides between concurrent acquires (INSERT … ON CONFLICT DO
 *    NOTHING), never a read-then-write check;
 *  - a lease past `expires_at` lets nobody invoke (decide.ts compares with the database clock);
 *    it is ended with reason `expired` and a `lease.expired` event by the sweep, or by the next
 *    acquire of the same capability, whichever comes first, exactly once (row locks + SKIP LOCKED);
 *  - who may acquire: whoever could invoke the capability under `free` (owner, admin, eligible
 *    session member), and only while its policy is `leased` (`lease.not_leased` otherwise);
 *  - a second acquirer gets `lease.held` (409) with `expiresAt`; the holder is named only to the
 *    node's owner and admins (and the holder learns it is theirs);
 *  - only the holder renews; the holder releases, the owner or an admin may break it
 *    (`lease.released` with `broken: true`); releasing an ended lease changes nothing;
 *  - every grant, renewal, release and expiry is a fleet event in the same transaction.
 */
import {
  TetherError,
  fleetEvent,
  type LeaseAcquireInput,
  type LeaseEndReason,
  type LeaseId,
  type LeaseListInput,
  type LeaseListOutput,
  type LeaseReleaseInput,
  type LeaseRenewInput,
  type LeaseView,
  type NodeId,
  type ParticipantId,
} from '@tether/contracts';
import type { ParticipantPrincipal } from '../auth/principal.js';
import type { Db, Sql } from '../db/pool.js';
import { appendEvent, eventPayloadSql, feedWritten } from '../events/append.js';
import { isEligible, isOwnerOrAdmin, nodeAccess, type NodeAccess } from './access.js';

const LEASE_COLUMNS = `id, node_id, capability, holder_id, acquired_at, expires_at, ended_at, end_reason`;

interface LeaseRow {
  id: string;
  node_id: string;
  capability: string;
  holder_id: string;
  acquired_at: Date;
  expires_at: Date;
  ended_at: Date | null;
  end_reason: LeaseEndReason | null;
}

function toView(row: LeaseRow, viewer: ParticipantPrincipal, access: NodeAccess): LeaseView {
  const mine = row.holder_id === viewer.participantId;
  return {
    leaseId: row.id as LeaseId,
    nodeId: row.node_id as NodeId,
    capability: row.capability,
    holderParticipantId: mine || isOwnerOrAdmin(access) ? (row.holder_id as ParticipantId) : null,
    heldByCaller: mine,
    acquiredAt: row.acquired_at,
    expiresAt: row.expires_at,
    endedAt: row.ended_at,
    endReason: row.end_reason,
  };
}

/**
 * Ends active leases that are past their expiry (all of them, or one node × capability's), each
 * with its `lease.expired` event; returns how many. Rows another transaction holds are skipped:
 * that one is ending or renewing them.
 */
export async function expireLeases(
  sql: Sql,
  only?: { nodeId: string; capability: string },
): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(
    `WITH due AS (
       SELECT id FROM capability_leases
        WHERE ended_at IS NULL AND expires_at <= now()
          AND ($1::text IS NULL OR (node_id = $1 AND capability = $2))
        ORDER BY expires_at
        FOR UPDATE SKIP LOCKED
     ), ended AS (
       UPDATE capability_leases l SET ended_at = now(), end_reason = 'expired'
         FROM due WHERE l.id = due.id
       RETURNING l.id, l.node_id, l.capability, l.holder_id, l.expires_at
     ), events AS (
       INSERT INTO fleet_events (type, node_id, session_id, payload)
       SELECT 'lease.expired', e.node_id, NULL, ${eventPayloadSql('lease.expired', {
         leaseId: 'e.id',
         capability: 'e.capability',
         holder: 'e.holder_id',
         expiredAt: `to_char(e.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
       })}
         FROM ended e ORDER BY e.expires_at, e.id
       RETURNING 1
     )
     SELECT count(*)::int AS n FROM events`,
    [only?.nodeId ?? null, only?.capability ?? null],
  );
  const n = rows[0]?.n ?? 0;
  if (n > 0) feedWritten(sql);
  return n;
}

async function policyOf(sql: Sql, nodeId: string, capability: string): Promise<string> {
  const { rows } = await sql.query<{ policy: string }>(
    `SELECT policy FROM node_capability_policies WHERE node_id = $1 AND capability = $2`,
    [nodeId, capability],
  );
  return rows[0]?.policy ?? 'owner';
}

export async function acquireLease(
  db: Db,
  actor: ParticipantPrincipal,
  input: LeaseAcquireInput,
): Promise<LeaseView> {
  return db.tx(async (sql) => {
    // The node row first: acquires of one node queue here, before any event is written.
    const access = await nodeAccess(sql, actor, input.nodeId, true);
    if (!isEligible(access)) {
      throw new TetherError(
        'policy.not_member',
        "Only the node's owner, an admin or a member of a session the node is attached to may acquire its leases.",
      );
    }
    if ((await policyOf(sql, input.nodeId, input.capability)) !== 'leased') {
      throw new TetherError(
        'lease.not_leased',
        `The access policy of ${input.capability} is not \`leased\`.`,
        { capability: input.capability },
      );
    }
    // A lease past its expiry that the sweep has not ended yet: end it now, before taking its place.
    await expireLeases(sql, { nodeId: input.nodeId, capability: input.capability });
    const { rows } = await sql.query<LeaseRow>(
      `INSERT INTO capability_leases (node_id, capability, holder_id, expires_at)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4))
       ON CONFLICT (node_id, capability) WHERE ended_at IS NULL DO NOTHING
       RETURNING ${LEASE_COLUMNS}`,
      [input.nodeId, input.capability, actor.participantId, input.ttlSeconds],
    );
    const granted = rows[0];
    if (!granted) {
      const { rows: held } = await sql.query<LeaseRow>(
        `SELECT ${LEASE_COLUMNS} FROM capability_leases
          WHERE node_id = $1 AND capability = $2 AND ended_at IS NULL`,
        [input.nodeId, input.capability],
      );
      const current = held[0];
      const mine = current?.holder_id === actor.participantId;
      throw new TetherError(
        'lease.held',
        mine
          ? 'You already hold this lease; renew it (lease.renew) instead.'
          : "Another participant holds this capability's lease.",
        {
          capability: input.capability,
          ...(current ? { expiresAt: current.expires_at.toISOString() } : {}),
          ...(current && (mine || isOwnerOrAdmin(access))
            ? { leaseId: current.id, holderParticipantId: current.holder_id }
            : {}),
          heldByCaller: mine,
        },
      );
    }
    await appendEvent(
      sql,
      fleetEvent('lease.granted', {
        leaseId: granted.id,
        capability: granted.capability,
        holder: actor.participantId,
        expiresAt: granted.expires_at.toISOString(),
      }),
      { nodeId: input.nodeId },
    );
    return toView(granted, actor, access);
  });
}

/** The lease (locked) and the caller's relation to its node; `lease.not_found` if not visible. */
async function loadLease(
  sql: Sql,
  actor: ParticipantPrincipal,
  leaseId: string,
): Promise<{ lease: LeaseRow; access: NodeAccess }> {
  const { rows } = await sql.query<LeaseRow>(
    `SELECT ${LEASE_COLUMNS} FROM capability_leases WHERE id = $1 FOR UPDATE`,
    [leaseId],
  );
  const lease = rows[0];
  if (!lease) throw new TetherError('lease.not_found', 'No such lease.');
  let access: NodeAccess;
  try {
    access = await nodeAccess(sql, actor, lease.node_id);
  } catch (error) {
    if (error instanceof TetherError && error.code === 'node.not_found')
      throw new TetherError('lease.not_found', 'No such lease.');
    throw error;
  }
  return { lease, access };
}

export async function renewLease(
  db: Db,
  actor: ParticipantPrincipal,
  input: LeaseRenewInput,
): Promise<LeaseView> {
  return db.tx(async (sql) => {
    const { lease, access } = await loadLease(sql, actor, input.leaseId);
    if (lease.holder_id !== actor.participantId) {
      throw new TetherError('lease.not_holder', 'Only the holder may renew a lease.');
    }
    const { rows } = await sql.query<LeaseRow>(
      `UPDATE capability_leases
          SET expires_at = now() + make_interval(secs => $2), renewed_at = now()
        WHERE id = $1 AND ended_at IS NULL AND expires_at > now()
        RETURNING ${LEASE_COLUMNS}`,
      [input.leaseId, input.ttlSeconds],
    );
    const renewed = rows[0];
    if (!renewed) {
      throw new TetherError('lease.ended', 'The lease has ended; acquire a new one.', {
        endReason: lease.end_reason ?? 'expired',
      });
    }
    await appendEvent(
      sql,
      fleetEvent('lease.renewed', {
        leaseId: renewed.id,
        capability: renewed.capability,
        holder: renewed.holder_id as ParticipantId,
        expiresAt: renewed.expires_at.toISOString(),
      }),
      { nodeId: renewed.node_id },
    );
    return toView(renewed, actor, access);
  });
}

export async function releaseLease(
  db: Db,
  actor: ParticipantPrincipal,
  input: LeaseReleaseInput,
): Promise<LeaseView> {
  return db.tx(async (sql) => {
    const { lease, access } = await loadLease(sql, actor, input.leaseId);
    const mine = lease.holder_id === actor.participantId;
    if (!mine && !isOwnerOrAdmin(access)) {
      throw new TetherError(
        'lease.not_holder',
        "Only the holder, the node's owner or an admin may release a lease.",
      );
    }
    if (lease.ended_at !== null) return toView(lease, actor, access);
    if ((await expireLeases(sql, { nodeId: lease.node_id, capability: lease.capability })) > 0) {
      // It had run out before this release: it ended by expiry, not by anyone's hand.
      const { lease: expired } = await loadLease(sql, actor, input.leaseId);
      return toView(expired, actor, access);
    }
    const broken = !mine;
    const { rows } = await sql.query<LeaseRow>(
      `UPDATE capability_leases SET ended_at = now(), end_reason = $2, ended_by = $3
        WHERE id = $1 RETURNING ${LEASE_COLUMNS}`,
      [input.leaseId, broken ? 'broken' : 'released', actor.participantId],
    );
    const ended = rows[0]!;
    await appendEvent(
      sql,
      fleetEvent('lease.released', {
        leaseId: ended.id,
        capability: ended.capability,
        holder: ended.holder_id as ParticipantId,
        by: actor.participantId,
        broken,
      }),
      { nodeId: ended.node_id },
    );
    return toView(ended, actor, access);
  });
}

/** The node's active, unexpired leases (anyone who can see the node). */
export async function listLeases(
  db: Db,
  actor: ParticipantPrincipal,
  input: LeaseListInput,
): Promise<LeaseListOutput> {
  return db.withClient(async (sql) => {
    const access = await nodeAccess(sql, actor, input.nodeId);
    const { rows } = await sql.query<LeaseRow>(
      `SELECT ${LEASE_COLUMNS} FROM capability_leases
        WHERE node_id = $1 AND ended_at IS NULL AND expires_at > now()
          AND ($2::text IS NULL OR capability = $2)
        ORDER BY capability`,
      [input.nodeId, input.capability ?? null],
    );
    return { items: rows.map((r) => toView(r, actor, access)) };
  });
}
