/**
 * Writes to the fleet event feed. Always called with the transaction that makes the change,
 * so an event exists exactly when its change committed.
 *
 * Appending takes the feed's transaction-scoped advisory lock (ids are drawn in commit order,
 * migration 2), held until commit. So a transaction must take every row lock it needs *before*
 * its first event: one that held the feed lock and then waited for a row could deadlock with a
 * writer holding that row and waiting for the feed lock.
 */
import type { FleetEventType } from '@tether/contracts';
import type { Sql } from '../db/pool.js';

export interface NewFleetEvent {
  type: FleetEventType;
  nodeId?: string | null | undefined;
  sessionId?: string | null | undefined;
  payload?: Record<string, unknown> | undefined;
}

export async function appendEvent(sql: Sql, event: NewFleetEvent): Promise<number> {
  const { rows } = await sql.query<{ id: number }>(
    `INSERT INTO fleet_events (type, node_id, session_id, payload) VALUES ($1, $2, $3, $4) RETURNING id`,
    [
      event.type,
      event.nodeId ?? null,
      event.sessionId ?? null,
      JSON.stringify(event.payload ?? {}),
    ],
  );
  return rows[0]!.id;
}
