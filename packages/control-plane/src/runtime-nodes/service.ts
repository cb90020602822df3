/**
 * Runtime-node lifecycle: attach (its own module, attach.ts), capability update, heartbeat,
 * detach, revoke. The roster, a read, is roster.ts.
 * Invariants held here or by the schema:
 *  - a revoked attachment row is terminal: only revokeAttachment writes `revoked`;
 *  - read-only is derived at write time from the stored node version and the session's
 *    current floor; a read-only node's capability update changes nothing (version.floor_exceeded);
 *  - an attachment is online/degraded only with a non-empty declared capability set;
 *  - nothing here writes sessions or session_memberships;
 *  - times come from the database clock.
 */
import {
  AttachmentState,
  TetherError,
  fleetEvent,
  type CapabilityUpdateInput,
  type CapabilityUpdateOutput,
  type DetachInput,
  type HeartbeatInput,
  type RevokeAttachmentInput,
} from '@tether/contracts';
import { capabilitiesDigest } from '@tether/contracts/node';
import { z } from 'zod';
import type { NodePrincipal, ParticipantPrincipal } from '../auth/principal.js';
import { assertNodeSelf, isAdmin } from '../auth/principal.js';
import type { Db, Sql } from '../db/pool.js';
import { parseRow } from '../db/rows.js';
import { appendEvent } from '../events/append.js';
import { undeclared, type CallOrigin } from './attach.js';
import { ACTIVE_ATTACHMENT_STATES_SQL } from '../db/sql-lists.js';
import { endActiveAttachment } from './end-attachment.js';
import type { HeartbeatBatcher } from './heartbeat-batch.js';
import { DEFAULT_METRICS_HISTORY } from './metrics-history.js';
import { isReadOnly } from '../sessions/floor.js';
import { writePresence } from './presence.js';

export { attach, type CallOrigin } from './attach.js';

async function assertNodeActive(sql: Sql, nodeId: string): Promise<void> {
  // Row lock: a concurrent node.revoke waits for us (or we see its result), and concurrent writes
  // for one node serialise here instead of deadlocking on the later UPDATE of this row.
  const { rows } = await sql.query<{ status: string }>(
    `SELECT status FROM nodes WHERE node_id = $1 FOR NO KEY UPDATE`,
    [nodeId],
  );
  if (rows[0]?.status !== 'active') {
    throw new TetherError('auth.unauthenticated', 'The node identity is unknown or revoked.');
  }
}

const ActiveAttachmentRow = z.object({
  id: z.string(),
  session_id: z.string(),
  state: AttachmentState,
  node_version: z.string(),
  min_node_version: z.string().nullable(),
});

export async function capabilityUpdate(
  db: Db,
  principal: NodePrincipal,
  input: CapabilityUpdateInput,
): Promise<CapabilityUpdateOutput> {
  assertNodeSelf(principal, input);
  return db.tx(async (sql) => {
    await assertNodeActive(sql, input.nodeId);
    const { rows } = await sql.query(
      `SELECT a.id, a.session_id, a.state, a.node_version, s.min_node_version
         FROM runtime_node_attachments a JOIN sessions s ON s.id = a.session_id
        WHERE a.node_id = $1 AND a.state IN ${ACTIVE_ATTACHMENT_STATES_SQL}
        FOR UPDATE OF a`,
      [input.nodeId],
    );
    const attachment = rows[0] ? parseRow(ActiveAttachmentRow, rows[0], 'attachment') : undefined;

    if (attachment && isReadOnly(attachment.node_version, attachment.min_node_version)) {
      throw new TetherError(
        'version.floor_exceeded',
        'The node is read-only in this session: its node version is below the floor.',
        {
          nodeVersion: attachment.node_version,
          minNodeVersion: attachment.min_node_version,
        },
      );
    }

    const declared = Object.keys(input.capabilities).length > 0;
    let nextState: AttachmentState = attachment?.state ?? 'offline';
    if (input.healthChanges) {
      if (!attachment) {
        throw new TetherError(
          'runtimenode.not_attached',
          'A health change needs an active attachment.',
        );
      }
      nextState = input.healthChanges.state;
    }
    if ((nextState === 'online' || nextState === 'degraded') && !declared) {
      throw undeclared(nextState, { state: attachment?.state, requested: nextState });
    }

    const capabilities = JSON.stringify(input.capabilities);
    const { rows: updated } = await sql.query<{ updated_at: Date }>(
      `UPDATE nodes SET capabilities = $2::jsonb, updated_at = now() WHERE node_id = $1 RETURNING updated_at`,
      [input.nodeId, capabilities],
    );
    if (attachment) {
      await sql.query(
        `UPDATE runtime_node_attachments
            SET capabilities = $2::jsonb, capabilities_digest = $4, state = $3, updated_at = now()
          WHERE id = $1`,
        [attachment.id, capabilities, nextState, capabilitiesDigest(input.capabilities)],
      );
      if (nextState !== attachment.state) {
        await appendEvent(
          sql,
          fleetEvent('runtimenode.state_changed', {
            from: attachment.state,
            to: nextState,
            reason: input.healthChanges?.reason ?? null,
          }),
          { nodeId: input.nodeId, sessionId: attachment.session_id },
        );
      }
    }
    await appendEvent(
      sql,
      fleetEvent('runtimenode.capabilities_updated', {
        capabilities: Object.keys(input.capabilities).sort(),
      }),
      { nodeId: input.nodeId, sessionId: attachment?.session_id ?? null },
    );
    return { nodeId: input.nodeId, state: nextState, updatedAt: updated[0]!.updated_at };
  });
}

/**
 * A beat sets last_heartbeat_at from the database clock and the reported health (restoring
 * degraded/offline presence). One statement: the presence update and, only on a transition,
 * its event — shared with other beats through the group-commit batcher when one is given.
 * Version-invariant: read-only nodes may beat.
 */
export async function heartbeat(
  db: Db,
  principal: NodePrincipal,
  input: HeartbeatInput,
  origin: CallOrigin = {},
  batcher?: HeartbeatBatcher,
): Promise<null> {
  assertNodeSelf(principal, input);
  const metrics = input.metrics === undefined ? null : JSON.stringify(input.metrics);
  const connectionId = origin.connectionId ?? null;
  // The batch writes known, active nodes with a presence row; anything else (revoked, or a
  // lost presence row to recreate) takes the single-beat path, which knows how to answer.
  if (batcher) {
    const batched = await batcher.submit({
      nodeId: input.nodeId,
      health: input.healthState,
      metrics,
      connectionId,
    });
    if (batched) return null;
  }
  const written = await writePresence(db, input.nodeId, {
    health: input.healthState,
    beat: true,
    metrics,
    cause: 'heartbeat',
    connectionId,
    history: batcher?.metricsHistory ?? DEFAULT_METRICS_HISTORY,
  });
  if (written === null) {
    throw new TetherError('auth.unauthenticated', 'The node identity is unknown or revoked.');
  }
  return null;
}

/** Idempotent: the active attachment (if any) goes offline, presence goes offline. */
export async function detach(db: Db, principal: NodePrincipal, input: DetachInput): Promise<null> {
  assertNodeSelf(principal, input);
  await db.tx((sql) =>
    endActiveAttachment(
      sql,
      input.nodeId,
      input.reason ?? null,
      { kind: 'node', nodeId: input.nodeId },
      () => writePresence(sql, input.nodeId, { health: 'offline', beat: false, cause: 'detach' }),
    ),
  );
  return null;
}

/**
 * A session owner (or admin) revokes one node's attachment to that session, for good.
 * The node keeps its identity and presence and may attach to other sessions.
 */
export async function revokeAttachment(
  db: Db,
  actor: ParticipantPrincipal,
  input: RevokeAttachmentInput,
): Promise<null> {
  await db.tx(async (sql) => {
    if (!isAdmin(actor)) {
      const { rows } = await sql.query(
        `SELECT 1 FROM session_memberships
          WHERE session_id = $1 AND participant_id = $2 AND state = 'active' AND role = 'owner'`,
        [input.sessionId, actor.participantId],
      );
      if (!rows[0]) {
        throw new TetherError(
          'runtimenode.permission_denied',
          'Only a session owner may revoke an attachment.',
        );
      }
    }
    const { rows } = await sql.query<{ previous_state: AttachmentState }>(
      `UPDATE runtime_node_attachments a SET state = 'revoked', updated_at = now()
         FROM (SELECT id, state FROM runtime_node_attachments WHERE node_id = $1 AND session_id = $2 FOR UPDATE) prev
        WHERE a.id = prev.id
        RETURNING prev.state AS previous_state`,
      [input.nodeId, input.sessionId],
    );
    if (!rows[0])
      throw new TetherError('node.not_found', 'The node has no attachment to this session.');
    if (rows[0].previous_state !== 'revoked') {
      await appendEvent(
        sql,
        fleetEvent('runtimenode.revoked', {
          previousState: rows[0].previous_state,
          reason: input.reason ?? null,
          by: actor.participantId,
        }),
        { nodeId: input.nodeId, sessionId: input.sessionId },
      );
    }
  });
  return null;
}
