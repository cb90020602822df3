/**
 * Ends a node's active attachment (it goes `offline`) with one `runtimenode.detached` event per
 * row ended, inside the caller's transaction. Used by the node's own `runtimenode.detach` and by
 * an owner's or admin's `node.detach`; what else changes (presence) is the caller's business.
 * Row locks are taken here before the events are written (see events/append.ts).
 */
import {
  fleetEvent,
  type AttachmentId,
  type FleetEventPayloads,
  type AttachmentState,
} from '@tether/contracts';
import type { Sql } from '../db/pool.js';
import { appendEvent } from '../events/append.js';
import { ACTIVE_ATTACHMENT_STATES_SQL } from '../db/sql-lists.js';

/** The active attachment states, as an SQL list (`state IN ${ACTIVE_ATTACHMENT_STATES_SQL}`). */

type DetachedBy = NonNullable<FleetEventPayloads['runtimenode.detached']['by']>;

/**
 * Ends the node's active attachment (at most one is active) and writes its event. `beforeEvents`
 * runs after the attachment's row lock and before the event (the node's own detach writes its
 * presence there: row locks first, events last).
 */
export async function endActiveAttachment(
  sql: Sql,
  nodeId: string,
  reason: string | null,
  by: DetachedBy,
  beforeEvents?: () => Promise<unknown>,
): Promise<void> {
  const { rows } = await sql.query<{
    id: AttachmentId;
    session_id: string;
    previous_state: AttachmentState;
  }>(
    `UPDATE runtime_node_attachments a SET state = 'offline', updated_at = now()
       FROM (SELECT id, state FROM runtime_node_attachments
              WHERE node_id = $1 AND state IN ${ACTIVE_ATTACHMENT_STATES_SQL}
              FOR UPDATE) prev
      WHERE a.id = prev.id
      RETURNING a.id, a.session_id, prev.state AS previous_state`,
    [nodeId],
  );
  await beforeEvents?.();
  for (const row of rows) {
    await appendEvent(
      sql,
      fleetEvent('runtimenode.detached', {
        previousState: row.previous_state,
        reason,
        attachmentId: row.id,
        by,
      }),
      { nodeId, sessionId: row.session_id },
    );
  }
}
