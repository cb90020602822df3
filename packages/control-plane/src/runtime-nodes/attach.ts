/**
 * `runtimenode.attach`: a node attaches to a session, in one statement after a precheck.
 * Invariants held here or by the schema:
 *  - at most one active attachment per node: the partial unique index decides (23505 →
 *    runtimenode.attach_conflict), never a read-then-write check; a stale active attachment to
 *    another session (nothing live speaks for it) is superseded by the attach instead;
 *  - a revoked attachment row is terminal (runtimenode.attach_revoked);
 *  - read-only is derived at write time from the node version and the session's current floor;
 *  - attaching is proof of life: presence takes the reported health (writePresence's rules);
 *  - nothing here writes sessions or session_memberships; times come from the database clock.
 */
import {
  AttachmentState,
  TetherError,
  type AttachInput,
  type AttachOutput,
  type AttachmentId,
  type SessionId,
} from '@tether/contracts';
import { capabilitiesDigest } from '@tether/contracts/node';
import { z } from 'zod';
import type { NodePrincipal } from '../auth/principal.js';
import { assertNodeSelf } from '../auth/principal.js';
import { prepared, type Db } from '../db/pool.js';
import { parseRow } from '../db/rows.js';
import { eventPayloadSql, feedWritten } from '../events/append.js';
import { isReadOnly } from '../sessions/floor.js';
import { presenceChangedPayloadSql, presenceChangeSetSql, writePresence } from './presence.js';
import { ACTIVE_ATTACHMENT_STATES_SQL } from '../db/sql-lists.js';

const ATTACHING_ROLES_SQL = `('owner', 'collaborator', 'runtime contributor')`;

const AttachRow = z.object({
  id: z.string(),
  state: AttachmentState,
  attached_at: z.date(),
  previous_state: z.string().nullable(),
});

/** Where a call arrived: a WebSocket connection id lets presence re-bind to that socket. */
export interface CallOrigin {
  connectionId?: string | null;
  /** The node has another open connection on this replica (attach: a second copy runs). */
  otherConnection?: boolean;
}

/**
 * Whether the node's other active attachment is live, i.e. something other than the caller
 * still speaks for the node: another open connection of the node on this replica; or presence
 * online/degraded and bound to a connection that is not the caller's (an HTTP caller cannot
 * show that it is what keeps presence alive, so any live presence counts). Otherwise — presence
 * offline, or held only by the caller's own connection — the attachment is stale: its process
 * is gone, and an attach by the node's credential supersedes it.
 */
function attachmentIsLive(
  presence: { health: string | null; connection: string | null },
  origin: CallOrigin,
): boolean {
  if (origin.otherConnection === true) return true;
  if (presence.health === null || presence.health === 'offline') return false;
  const caller = origin.connectionId ?? null;
  return caller === null || presence.connection !== caller;
}

/**
 * What the attach write needs to know first: the node, the caller's access and the floor, and
 * the node's active attachment to another session (if any) with its presence, to tell a stale
 * one (superseded by the write) from a live one (attach_conflict).
 */
const ATTACH_PRECHECK = prepared(
  'tether_attach_precheck',
  `SELECT n.status AS node_status,
          s.min_node_version,
          EXISTS (SELECT 1 FROM session_memberships m
                   WHERE m.session_id = s.id AND m.participant_id = $2
                     AND m.state = 'active' AND m.role IN ${ATTACHING_ROLES_SQL}) AS allowed,
          o.id AS other_id,
          p.health_state AS presence_health,
          p.connection_id AS presence_connection
     FROM (SELECT 1) one
     LEFT JOIN nodes n ON n.node_id = $3
     LEFT JOIN sessions s ON s.id = $1
     LEFT JOIN runtime_node_attachments o
            ON o.node_id = $3 AND o.session_id <> $1 AND o.state IN ${ACTIVE_ATTACHMENT_STATES_SQL}
     LEFT JOIN runtime_node_presence p ON p.node_id = $3`,
);

/** The node's active attachment (after an attach_conflict), to say which one and if it is live. */
const ACTIVE_ATTACHMENT = prepared(
  'tether_attach_conflicting',
  `SELECT a.id, a.session_id, p.health_state AS presence_health,
          p.connection_id AS presence_connection
     FROM runtime_node_attachments a
     LEFT JOIN runtime_node_presence p ON p.node_id = a.node_id
    WHERE a.node_id = $1 AND a.session_id <> $2 AND a.state IN ${ACTIVE_ATTACHMENT_STATES_SQL}`,
);

/**
 * The whole attach in one statement (no round trips inside a transaction: a reconnect wave
 * attaches thousands of nodes, and every round trip is an event-loop turn of a busy server).
 * In order: lock the node row (active only) and check the access again with the floor the
 * precheck saw; lock the attachment row; end the node's stale attachment to another session
 * that the precheck found ($10: state offline, unless it changed since or the target row is
 * revoked), before the upsert so that the partial unique index sees it ended; upsert the
 * attachment; refresh the node's capabilities and
 * version; write presence (proof of life, the writePresence rules); then the events, presence
 * first. Each step reads the previous one's output, so the locks come first and the ids last.
 * $1 session, $2 owner, $3 node, $4 capabilities, $5 node version, $6 floor seen, $7 health,
 * $8 connection id, $9 read-only, $10 the stale attachment to supersede (or null), $11 the
 * capabilities digest (resume.ts compares it), $12 and $13 the health change's state and reason
 * (or null: attach with `healthChanges`, then the attachment's state change is the last event).
 */
const ATTACH = prepared(
  'tether_attach',
  `
WITH node AS (
  SELECT n.node_id FROM nodes n WHERE n.node_id = $3 AND n.status = 'active' FOR NO KEY UPDATE
), access AS (
  SELECT s.min_node_version IS NOT DISTINCT FROM $6::text AS same_floor
    FROM sessions s JOIN session_memberships m ON m.session_id = s.id AND m.participant_id = $2
   WHERE s.id = $1 AND m.state = 'active' AND m.role IN ${ATTACHING_ROLES_SQL}
     AND EXISTS (SELECT 1 FROM node)
), ok AS (
  SELECT 1 AS ok FROM access WHERE same_floor
), previous AS (
  SELECT a.state FROM runtime_node_attachments a
   WHERE a.node_id = $3 AND a.session_id = $1 AND EXISTS (SELECT 1 FROM ok)
   FOR UPDATE
), superseded AS (
  UPDATE runtime_node_attachments a SET state = 'offline', updated_at = now()
    FROM (SELECT o.id, o.state FROM runtime_node_attachments o
           WHERE o.id = $10::uuid AND o.node_id = $3 AND o.session_id <> $1
             AND o.state IN ${ACTIVE_ATTACHMENT_STATES_SQL} AND EXISTS (SELECT 1 FROM ok)
             AND NOT EXISTS (SELECT 1 FROM previous WHERE previous.state = 'revoked')
           FOR UPDATE) prev
   WHERE a.id = prev.id
  RETURNING a.id, a.session_id, prev.state AS previous_state
), started AS (
  -- The state the attach gives: a re-attach of an active row keeps its state (idempotent
  -- reconnect) unless it would be online without capabilities; a new or offline row starts
  -- registering. The caller's health change ($12, null without one) then moves it on in the
  -- same write when it may: capabilities declared, not read-only.
  SELECT st.state,
         CASE WHEN $12::text IS NOT NULL AND NOT $9::boolean AND $4::jsonb <> '{}'::jsonb
              THEN $12::text ELSE st.state END AS target
    FROM (SELECT CASE WHEN p.state IN ('online', 'degraded') AND $4::jsonb <> '{}'::jsonb
                      THEN p.state ELSE 'registering' END AS state
            FROM (SELECT (SELECT state FROM previous) AS state) p) st
), att AS (
  -- A revoked row is left untouched (the WHERE makes the upsert return nothing).
  INSERT INTO runtime_node_attachments AS a
         (session_id, participant_id, node_id, capabilities, node_version, state, capabilities_digest)
  SELECT $1, $2, $3, $4::jsonb, $5, (SELECT target FROM started), $11 FROM ok LEFT JOIN previous ON true
   -- The superseded row is ended first (this reads it), so the index no longer counts it.
   WHERE (SELECT count(*) FROM superseded) >= 0
  ON CONFLICT ON CONSTRAINT runtime_node_attachments_node_session_key DO UPDATE SET
    capabilities = EXCLUDED.capabilities,
    capabilities_digest = EXCLUDED.capabilities_digest,
    node_version = EXCLUDED.node_version,
    participant_id = EXCLUDED.participant_id,
    state = EXCLUDED.state,
    updated_at = now()
  WHERE a.state <> 'revoked'
  RETURNING a.id, a.state, a.attached_at
), touched AS (
  UPDATE nodes SET capabilities = $4::jsonb, node_version = $5, updated_at = now()
   WHERE node_id = $3 AND EXISTS (SELECT 1 FROM att)
), presence_prev AS (
  SELECT p.node_id, p.health_state FROM runtime_node_presence p
   WHERE p.node_id = $3 AND EXISTS (SELECT 1 FROM att)
   FOR UPDATE OF p
), presence AS (
  -- Attaching is proof of life: presence takes the reported health (writePresence's rules).
  UPDATE runtime_node_presence p SET
    ${presenceChangeSetSql('presence_prev', { health: '$7::text', beat: 'true', metrics: 'NULL::jsonb', connection: '$8::text' })}
  FROM presence_prev
  WHERE p.node_id = presence_prev.node_id
  RETURNING presence_prev.health_state AS from_state, p.health_state AS to_state
), events AS (
  INSERT INTO fleet_events (id, type, node_id, session_id, payload)
  SELECT nextval('fleet_events_id_seq'), e.type, $3, e.session_id, e.payload
    FROM (
      SELECT 1 AS ord, 'presence.changed' AS type, NULL::uuid AS session_id,
             ${presenceChangedPayloadSql('attach')} AS payload
        FROM presence WHERE from_state <> to_state
      UNION ALL
      SELECT 2, 'runtimenode.detached', superseded.session_id,
             ${eventPayloadSql('runtimenode.detached', {
               previousState: 'superseded.previous_state',
               reason: `'superseded'`,
               attachmentId: 'superseded.id',
               by: `jsonb_build_object('kind', 'node', 'nodeId', $3::text)`,
               supersededBy: 'att.id',
             })}
        FROM superseded, att
      UNION ALL
      SELECT 3, 'runtimenode.attached', $1::uuid,
             ${eventPayloadSql('runtimenode.attached', {
               attachmentId: 'att.id',
               state: '(SELECT state FROM started)',
               previousState: '(SELECT state FROM previous)',
               readOnly: '$9::boolean',
               nodeVersion: '$5::text',
             })}
        FROM att
      UNION ALL
      SELECT 4, 'runtimenode.state_changed', $1::uuid,
             ${eventPayloadSql('runtimenode.state_changed', {
               from: 'started.state',
               to: 'att.state',
               reason: '$13::text',
             })}
        FROM att, started WHERE att.state <> started.state
       ORDER BY 1
    ) e
   WHERE CASE WHEN e.ord > 0 THEN (SELECT tether_feed_writer()) ELSE false END
)
SELECT (SELECT count(*) FROM node)::int AS node_ok,
       (SELECT count(*) FROM access)::int AS allowed,
       (SELECT count(*) FROM ok)::int AS same_floor,
       (SELECT count(*) FROM presence)::int AS presence_written,
       att.id, att.state, att.attached_at, (SELECT state FROM previous) AS previous_state,
       (SELECT id FROM superseded) AS superseded_id,
       (SELECT session_id FROM superseded) AS superseded_session_id
  FROM (SELECT 1) one LEFT JOIN att ON true`,
);

/** Online or degraded asked for an attachment without declared capabilities (attach, capabilityupdate). */
export const undeclared = (state: string, details: Record<string, unknown>): TetherError =>
  new TetherError(
    'runtimenode.capabilityupdate_conflict',
    `The attachment cannot be ${state} without declared capabilities.`,
    details,
  );
const unauthenticatedNode = (): TetherError =>
  new TetherError('auth.unauthenticated', 'The node identity is unknown or revoked.');
const attachDenied = (): TetherError =>
  new TetherError('runtimenode.permission_denied', 'The node may not attach to this session.');

export async function attach(
  db: Db,
  principal: NodePrincipal,
  input: AttachInput,
  origin: CallOrigin = {},
): Promise<AttachOutput> {
  assertNodeSelf(principal, input);
  if (input.healthChanges && Object.keys(input.capabilities).length === 0) {
    // Online requires a declaration: refused before anything is written, as capabilityupdate does.
    throw undeclared(input.healthChanges.state, { requested: input.healthChanges.state });
  }
  const capabilities = JSON.stringify(input.capabilities);
  // The floor can rise between the precheck and the write; the write then changes nothing and
  // the attach starts over with the new floor (read-only is derived at write time).
  for (let attempt = 0; ; attempt++) {
    const { rows: pre } = await db.query<{
      node_status: string | null;
      min_node_version: string | null;
      allowed: boolean;
      other_id: string | null;
      presence_health: string | null;
      presence_connection: string | null;
    }>(ATTACH_PRECHECK, [input.sessionId, principal.ownerParticipantId, input.nodeId]);
    const check = pre[0]!;
    if (check.node_status !== 'active') throw unauthenticatedNode();
    // Identical answer for "no such session" and "not an attaching member": no existence oracle.
    if (!check.allowed) throw attachDenied();
    const floor = check.min_node_version;
    const readOnly = isReadOnly(input.nodeVersion, floor);
    // A live other attachment is left alone: the write then fails on the index (attach_conflict).
    const supersede =
      check.other_id !== null &&
      !attachmentIsLive(
        { health: check.presence_health, connection: check.presence_connection },
        origin,
      )
        ? check.other_id
        : null;

    let written;
    try {
      written = await db.query<{
        node_ok: number;
        allowed: number;
        same_floor: number;
        presence_written: number;
        id: string | null;
        state: string | null;
        attached_at: Date | null;
        previous_state: string | null;
        superseded_id: string | null;
        superseded_session_id: string | null;
      }>(ATTACH, [
        input.sessionId,
        principal.ownerParticipantId,
        input.nodeId,
        capabilities,
        input.nodeVersion,
        floor,
        input.healthState,
        origin.connectionId ?? null,
        readOnly,
        supersede,
        capabilitiesDigest(input.capabilities),
        input.healthChanges?.state ?? null,
        input.healthChanges?.reason ?? null,
      ]);
    } catch (error) {
      if (!(error instanceof TetherError) || error.code !== 'runtimenode.attach_conflict') {
        throw error;
      }
      const conflict = await describeConflict(db, input, origin);
      // Ended (or stale) since the precheck: start over, superseding it if it is still there.
      if (attempt < 5 && (conflict === null || !conflict.live)) continue;
      throw new TetherError(
        'runtimenode.attach_conflict',
        conflict?.live !== false
          ? 'The node already has a live attachment to another session (another copy of the node is connected); detach it first.'
          : 'The node already has an active attachment to another session.',
        conflict ?? undefined,
      );
    }
    const result = written.rows[0]!;
    // An attachment written is a `runtimenode.attached` event (and maybe a presence change).
    if (result.id !== null) feedWritten(db);
    if (result.node_ok === 0) throw unauthenticatedNode();
    if (result.allowed === 0) throw attachDenied();
    if (result.same_floor === 0) {
      if (attempt < 5) continue;
      throw new TetherError('system.unavailable', "The session's floor kept changing; retry.");
    }
    if (result.id === null) {
      throw new TetherError(
        'runtimenode.attach_revoked',
        "This node's attachment to the session was revoked.",
      );
    }
    if (result.presence_written === 0) {
      // The node's presence row was lost: writePresence recreates it.
      await writePresence(db, input.nodeId, {
        health: input.healthState,
        beat: true,
        cause: 'attach',
        connectionId: origin.connectionId ?? null,
      });
    }
    const row = parseRow(AttachRow, result, 'attachment');
    return {
      attachmentId: row.id as AttachmentId,
      state: row.state,
      readOnly,
      attachedAt: row.attached_at,
      ...(result.superseded_id !== null && result.superseded_session_id !== null
        ? {
            superseded: {
              attachmentId: result.superseded_id as AttachmentId,
              sessionId: result.superseded_session_id as SessionId,
            },
          }
        : {}),
    };
  }
}

/** The attachment an attach conflicted with, and whether it is live (null: none any more). */
async function describeConflict(
  db: Db,
  input: AttachInput,
  origin: CallOrigin,
): Promise<{ attachmentId: string; sessionId: string; live: boolean } | null> {
  const { rows } = await db.query<{
    id: string;
    session_id: string;
    presence_health: string | null;
    presence_connection: string | null;
  }>(ACTIVE_ATTACHMENT, [input.nodeId, input.sessionId]);
  const row = rows[0];
  if (!row) return null;
  return {
    attachmentId: row.id,
    sessionId: row.session_id,
    live: attachmentIsLive(
      { health: row.presence_health, connection: row.presence_connection },
      origin,
    ),
  };
}
