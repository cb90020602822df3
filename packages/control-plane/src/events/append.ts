/**
 * Writes to the fleet event feed. Always called with the transaction that makes the change,
 * so an event exists exactly when its change committed.
 *
 * The first event of a transaction marks it as a feed writer (migration 5): readers of the feed
 * wait for it before they read past its ids, and other writers never wait for it. A transaction
 * must still take every row lock it needs *before* its first event: two transactions about one
 * node then draw their ids in the order they commit, so the feed tells each node's story in
 * order. (One that drew an id and then waited for a row could commit its older id after a
 * newer event about the same node.)
 *
 * Whoever writes events announces them with `feedWritten` (appendEvent does it itself): the
 * replicas' hubs learn of new events from the `tether_events` notification sent after the
 * commit (migration 7 took it out of the writers' transactions), and otherwise only from
 * their slow safety poll.
 */
import type { FleetEventType } from '@tether/contracts';
import type { Sql } from '../db/pool.js';

export interface NewFleetEvent {
  type: FleetEventType;
  nodeId?: string | null | undefined;
  sessionId?: string | null | undefined;
  payload?: Record<string, unknown> | undefined;
}

/** The channel on which every replica's feed hub listens for "new events committed". */
export const FEED_CHANNEL = 'tether_events';

/** Announces this handle's events to every replica once they are committed (coalesced). */
export function feedWritten(sql: Sql): void {
  sql.notifyAfterCommit(FEED_CHANNEL);
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
  feedWritten(sql);
  return rows[0]!.id;
}
