/**
 * `runtimenode.roster`, a read: every attachment of a session with both axes (attachment state
 * and presence) verbatim, read-only derived from the session's current floor.
 */
import {
  Capabilities as CapabilitiesSchema,
  NodeMetrics,
  AttachmentState,
  PresenceHealthState,
  TetherError,
  type EventEnvelopeVersion,
  type NodeId,
  type ParticipantId,
  type RosterEntry,
  type RosterOutput,
} from '@tether/contracts';
import { z } from 'zod';
import type { ParticipantPrincipal } from '../auth/principal.js';
import { isAdmin } from '../auth/principal.js';
import type { Db } from '../db/pool.js';
import { parseRow } from '../db/rows.js';
import { isReadOnly } from '../sessions/floor.js';
import { metricsReportedAtSql } from './metrics-history.js';

const RosterRow = z.object({
  node_id: z.string(),
  participant_id: z.string(),
  state: AttachmentState,
  health_state: PresenceHealthState,
  last_heartbeat_at: z.date().nullable(),
  capabilities: z.unknown(),
  node_version: z.string(),
  attached_at: z.date(),
  metrics: NodeMetrics.nullable(),
  metrics_reported_at: z.date().nullable(),
});

/** Every attachment of a session with both axes verbatim. Members (any role) and admins only. */
export async function roster(
  db: Db,
  actor: ParticipantPrincipal,
  input: { sessionId: string },
): Promise<RosterOutput> {
  return db.tx(async (sql) => {
    const { rows: access } = await sql.query<{
      min_node_version: string | null;
      member: boolean;
    }>(
      `SELECT s.min_node_version,
              EXISTS (SELECT 1 FROM session_memberships m
                       WHERE m.session_id = s.id AND m.participant_id = $2 AND m.state = 'active') AS member
         FROM sessions s WHERE s.id = $1`,
      [input.sessionId, actor.participantId],
    );
    const session = access[0];
    if (!session || (!session.member && !isAdmin(actor))) {
      throw new TetherError(
        'runtimenode.permission_denied',
        'Only members of the session may read its roster.',
      );
    }
    const { rows } = await sql.query(
      `SELECT a.node_id, a.participant_id, a.state, COALESCE(p.health_state, 'offline') AS health_state,
              p.last_heartbeat_at, a.capabilities, a.node_version, a.attached_at,
              p.metrics, ${metricsReportedAtSql('p')} AS metrics_reported_at
         FROM runtime_node_attachments a
         LEFT JOIN runtime_node_presence p ON p.node_id = a.node_id
        WHERE a.session_id = $1
        ORDER BY a.attached_at, a.node_id`,
      [input.sessionId],
    );
    const nodes: RosterEntry[] = rows.map((raw) => {
      const r = parseRow(RosterRow, raw, 'roster row');
      return {
        nodeId: r.node_id as NodeId,
        participantId: r.participant_id as ParticipantId,
        state: r.state,
        healthState: r.health_state,
        lastHeartbeatAt: r.last_heartbeat_at,
        readOnly: isReadOnly(r.node_version, session.min_node_version),
        capabilities: parseRow(CapabilitiesSchema, r.capabilities, 'capabilities'),
        nodeVersion: r.node_version as EventEnvelopeVersion,
        attachedAt: r.attached_at,
        metrics: r.metrics,
        metricsReportedAt: r.metrics_reported_at,
      };
    });
    return { nodes };
  });
}
