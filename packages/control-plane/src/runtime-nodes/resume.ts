/**
 * Resume in the WebSocket handshake (docs/decisions/0018-resume-in-the-handshake.md): nodes that
 * reconnect with a claim of what they were — attachment, session, node version, capabilities
 * digest, health — are checked and brought back in one statement per batch.
 *
 * A claim resumes when the attachment is active, is this node's and in the claimed session, the
 * node's owner may still attach to it, the node version is the recorded one and not below the
 * session's floor, and the stored capabilities digest is the claimed one. The statement then
 * does what a re-attach would have done for what changed: presence follows the new connection
 * (bound to it, a proof of life at the claimed health) and the attachment takes the claimed
 * health; `presence.changed` and `runtimenode.state_changed` are written for real transitions
 * only (presence first). Anything else is left untouched and answered with the reason; the node
 * then attaches as before. Rows are locked in node order (nodes, attachments, presence — the
 * order attach takes them), so concurrent batches and attaches cannot deadlock. No attachment
 * is created here: the single-active-attachment rule is untouched.
 */
import type { ResumeClaim, ResumeRefusalReason, AttachmentState } from '@tether/contracts';
import { prepared, type Sql } from '../db/pool.js';
import { eventPayloadSql, feedWritten } from '../events/append.js';
import { presenceChangedPayloadSql } from './presence.js';

const ATTACHING_ROLES_SQL = `('owner', 'collaborator', 'runtime contributor')`;

/** `MAJOR.MINOR` as an int[] for comparisons (both were validated before they were stored). */
const versionSql = (expr: string): string => `string_to_array(${expr}, '.')::int[]`;

/**
 * $1 node ids, $2 attachment ids, $3 session ids, $4 node versions, $5 digests, $6 healths,
 * $7 connection ids, $8 owners.
 */
const RESUME = prepared(
  'tether_resume_attachments',
  `
WITH req AS (
  SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::uuid[])
    AS r(node_id, attachment_id, session_id, node_version, digest, health, connection_id, owner_id)
), node AS (
  SELECT n.node_id FROM nodes n JOIN req ON req.node_id = n.node_id
   WHERE n.status = 'active'
   ORDER BY n.node_id
   FOR NO KEY UPDATE OF n
), att AS (
  -- The claimed attachment only when it is this node's: another node's is as good as absent.
  SELECT a.id, a.node_id, a.session_id, a.state, a.node_version, a.capabilities_digest,
         a.capabilities <> '{}'::jsonb AS declared, s.min_node_version
    FROM runtime_node_attachments a
    JOIN req ON req.attachment_id = a.id AND req.node_id = a.node_id
    JOIN node ON node.node_id = a.node_id
    JOIN sessions s ON s.id = a.session_id
   ORDER BY a.node_id
   FOR UPDATE OF a
), verdict AS (
  SELECT req.*, att.id, att.state AS from_state, att.declared,
    CASE
      WHEN att.id IS NULL OR att.state NOT IN ('registering', 'online', 'degraded')
        THEN 'attachment_ended'
      WHEN att.session_id <> req.session_id THEN 'session_mismatch'
      WHEN NOT EXISTS (SELECT 1 FROM session_memberships m
                        WHERE m.session_id = att.session_id AND m.participant_id = req.owner_id
                          AND m.state = 'active' AND m.role IN ${ATTACHING_ROLES_SQL})
        THEN 'access_changed'
      WHEN att.node_version <> req.node_version THEN 'version_changed'
      WHEN att.min_node_version IS NOT NULL
       AND ${versionSql('req.node_version')} < ${versionSql('att.min_node_version')}
        THEN 'floor_raised'
      WHEN att.capabilities_digest IS DISTINCT FROM req.digest THEN 'capabilities_changed'
    END AS reason
    FROM req LEFT JOIN att ON att.id = req.attachment_id
), resumed AS (
  SELECT * FROM verdict WHERE reason IS NULL
), att_upd AS (
  -- The claimed health, as the capability update after an attach would set it (never online
  -- without declared capabilities).
  UPDATE runtime_node_attachments a SET state = r.health, updated_at = now()
    FROM resumed r
   WHERE a.id = r.id AND r.declared AND a.state <> r.health
  RETURNING a.id, a.node_id, a.session_id, r.from_state, a.state AS to_state
), presence_prev AS (
  SELECT p.node_id, p.health_state FROM runtime_node_presence p
    JOIN resumed r ON r.node_id = p.node_id
   ORDER BY p.node_id
   FOR UPDATE OF p
), presence AS (
  -- Bound to the new connection (as bindConnections does), a proof of life at the claimed health.
  UPDATE runtime_node_presence p SET
    connection_id = r.connection_id,
    health_state = r.health,
    last_heartbeat_at = now(),
    online_since = CASE WHEN pp.health_state = 'offline' OR p.online_since IS NULL THEN now()
                        ELSE p.online_since END,
    changed_at = CASE WHEN pp.health_state <> r.health THEN now() ELSE p.changed_at END
    FROM presence_prev pp JOIN resumed r ON r.node_id = pp.node_id
   WHERE p.node_id = pp.node_id
  RETURNING p.node_id, pp.health_state AS from_state, p.health_state AS to_state
), events AS (
  INSERT INTO fleet_events (id, type, node_id, session_id, payload)
  SELECT nextval('fleet_events_id_seq'), e.type, e.node_id, e.session_id, e.payload
    FROM (
      SELECT 1 AS ord, node_id, 'presence.changed' AS type, NULL::uuid AS session_id,
             ${presenceChangedPayloadSql('connection')} AS payload
        FROM presence WHERE from_state <> to_state
      UNION ALL
      SELECT 2, node_id, 'runtimenode.state_changed', session_id,
             ${eventPayloadSql('runtimenode.state_changed', {
               from: 'from_state',
               to: 'to_state',
               reason: 'NULL::text',
             })}
        FROM att_upd
       ORDER BY 2, 1
    ) e
   WHERE CASE WHEN e.ord > 0 THEN (SELECT tether_feed_writer()) ELSE false END
)
SELECT v.node_id, v.connection_id, v.reason,
       COALESCE(u.to_state, v.from_state) AS state,
       (SELECT count(*) FROM presence WHERE from_state <> to_state)::int
         + (SELECT count(*) FROM att_upd)::int AS events,
       EXISTS (SELECT 1 FROM presence p WHERE p.node_id = v.node_id) AS bound
  FROM verdict v LEFT JOIN att_upd u ON u.id = v.id`,
);

export interface ResumeRequest {
  nodeId: string;
  ownerParticipantId: string;
  connectionId: string;
  claim: ResumeClaim;
}

export type ResumeResult =
  | { resumed: true; state: AttachmentState; bound: boolean }
  | { resumed: false; reason: ResumeRefusalReason };

/**
 * Checks and resumes every claim in one statement. Results by connection id. A node listed
 * twice (two sockets in one batch) is resumed once, on its last connection; the others are
 * answered `attachment_ended`-free as not resumed (`no_claim`), and attach.
 */
export async function resumeAttachments(
  sql: Sql,
  requests: readonly ResumeRequest[],
): Promise<Map<string, ResumeResult>> {
  const results = new Map<string, ResumeResult>();
  const latest = new Map<string, ResumeRequest>();
  for (const r of requests) latest.set(r.nodeId, r);
  for (const r of requests) {
    if (latest.get(r.nodeId) !== r)
      results.set(r.connectionId, { resumed: false, reason: 'no_claim' });
  }
  const batch = [...latest.values()];
  if (batch.length === 0) return results;
  const { rows } = await sql.query<{
    node_id: string;
    connection_id: string;
    reason: ResumeRefusalReason | null;
    state: AttachmentState | null;
    events: number;
    bound: boolean;
  }>(RESUME, [
    batch.map((r) => r.nodeId),
    batch.map((r) => r.claim.attachmentId),
    batch.map((r) => r.claim.sessionId),
    batch.map((r) => r.claim.nodeVersion),
    batch.map((r) => r.claim.capabilitiesDigest),
    batch.map((r) => r.claim.healthState),
    batch.map((r) => r.connectionId),
    batch.map((r) => r.ownerParticipantId),
  ]);
  if (rows.some((r) => r.events > 0)) feedWritten(sql);
  for (const row of rows) {
    results.set(
      row.connection_id,
      row.reason === null
        ? { resumed: true, state: row.state ?? 'registering', bound: row.bound }
        : { resumed: false, reason: row.reason },
    );
  }
  return results;
}
