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
import type { FleetEventPayloads, TypedFleetEvent } from '@tether/contracts';
import type { Sql } from '../db/pool.js';

/** What an event is about (columns of its own, for filters and visibility). */
export interface EventScope {
  nodeId?: string | null | undefined;
  sessionId?: string | null | undefined;
}

/** The channel on which every replica's feed hub listens for "new events committed". */
export const FEED_CHANNEL = 'tether_events';

/** Announces this handle's events to every replica once they are committed (coalesced). */
export function feedWritten(sql: Sql): void {
  sql.notifyAfterCommit(FEED_CHANNEL);
}

/**
 * Appends one event built by `fleetEvent(type, data)` (so its payload matches the contract).
 */
export async function appendEvent(
  sql: Sql,
  event: TypedFleetEvent,
  scope: EventScope = {},
): Promise<number> {
  const { rows } = await sql.query<{ id: number }>(
    `INSERT INTO fleet_events (type, node_id, session_id, payload) VALUES ($1, $2, $3, $4) RETURNING id`,
    [event.type, scope.nodeId ?? null, scope.sessionId ?? null, JSON.stringify(event.data)],
  );
  feedWritten(sql);
  return rows[0]!.id;
}

/** Event types whose payloads are built inside SQL statements (bulk and single-statement writers). */
export type SqlWrittenEventType =
  | 'presence.changed'
  | 'runtimenode.attached'
  | 'runtimenode.detached'
  | 'runtimenode.state_changed'
  | 'lease.expired'
  | 'command.state_changed';

/**
 * The payload of `type` as an SQL expression, from one SQL expression per payload field: the
 * compiler holds the field set to the contract's (every field, no other), and
 * test/events/payload-conformance.test.ts parses what each such statement wrote with the
 * contract schema. For writers that build many events in one statement, where building each
 * payload in TypeScript would cost a round trip (the sweep, the heartbeat batch, attach).
 */
export function eventPayloadSql<T extends SqlWrittenEventType>(
  type: T,
  fields: { readonly [K in keyof FleetEventPayloads[T]]-?: string },
): string {
  void type;
  const pairs = Object.entries(fields as Record<string, string>).map(
    ([key, expression]) => `'${key}', ${expression}`,
  );
  return `jsonb_build_object(${pairs.join(', ')})`;
}
