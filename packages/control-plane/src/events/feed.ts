/**
 * Reading the fleet event feed: pages after a cursor (with the caller's visibility and filter),
 * the visibility of a batch of events for many viewers at once (live fan-out), and retention.
 *
 * Writers append in parallel, so a newer id may commit before an older one. Every read of "the
 * events after N" is therefore bounded by the feed's *settled* id (migration 5): read first, in
 * its own statement, it waits for the writers still holding ids below the newest one issued, so
 * the read that follows (a later snapshot) has no holes that fill in afterwards.
 */
import {
  TetherError,
  type FleetListInput,
  type FleetListOutput,
  type FleetEvent,
  type FleetEventType,
  type FleetEventsFilter,
} from '@tether/contracts';
import type { ParticipantPrincipal } from '../auth/principal.js';
import { isAdmin } from '../auth/principal.js';
import { visibleNodeIdsSql } from '../auth/visibility.js';
import type { Db, Sql } from '../db/pool.js';
import { prepared } from '../db/pool.js';
import { pageLimit, Params } from '../db/pagination.js';

export type FeedEvent = FleetEvent;

interface EventRow {
  id: string;
  at: Date;
  type: FleetEventType;
  node_id: string | null;
  session_id: string | null;
  payload: Record<string, unknown>;
}

export const EVENT_COLUMNS = 'e.id::text AS id, e.at, e.type, e.node_id, e.session_id, e.payload';

/**
 * A stored event as the wire shows it. The payload is not parsed again here (this runs for every
 * event a replica fans out): every writer built it through `fleetEvent` or a contract-checked SQL
 * template (events/append.ts), and `fleet.list` validates its output against the union anyway.
 */
export function toFeedEvent(row: EventRow): FeedEvent {
  return {
    id: row.id,
    at: row.at,
    type: row.type,
    nodeId: row.node_id,
    sessionId: row.session_id,
    data: row.payload,
  } as FeedEvent;
}

/**
 * Event `e` is visible to `viewer` (an SQL expression): events of sessions the viewer is an
 * active member of; events of nodes the viewer may see (owner, or co-member of a session the
 * node is attached to — the node.get rule); pairing events without a node: requests and expiries
 * to every participant (like pairing.list shows pending requests), a rejection to its decider.
 */
export function eventVisibleSql(viewer: string): string {
  return `(e.session_id IN (SELECT vs.session_id FROM session_memberships vs
                             WHERE vs.participant_id = ${viewer} AND vs.state = 'active')
        OR e.node_id IN (${visibleNodeIdsSql(viewer)})
        OR (e.node_id IS NULL AND e.session_id IS NULL AND e.type LIKE 'pairing.%'
            AND (e.type IN ('pairing.requested', 'pairing.expired')
                 OR e.payload->>'decidedBy' = ${viewer}::text)))`;
}

/** True when `event` passes the subscriber's filter (the in-memory twin of `filterSql`). */
export function matchesFilter(event: FeedEvent, filter: FleetEventsFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.nodeId !== undefined && event.nodeId !== filter.nodeId) return false;
  if (filter.sessionId !== undefined && event.sessionId !== filter.sessionId) return false;
  if (filter.types !== undefined && !filter.types.includes(event.type)) return false;
  return true;
}

function filterSql(filter: FleetEventsFilter | undefined, params: Params): string[] {
  const where: string[] = [];
  if (filter?.nodeId !== undefined) where.push(`e.node_id = ${params.add(filter.nodeId)}`);
  if (filter?.sessionId !== undefined) {
    where.push(`e.session_id = ${params.add(filter.sessionId)}::uuid`);
  }
  if (filter?.types !== undefined) where.push(`e.type = ANY(${params.add(filter.types)}::text[])`);
  return where;
}

export function cursorExpired(lastEventId: string, reason: 'retention' | 'unknown'): TetherError {
  return new TetherError(
    'events.cursor_expired',
    reason === 'retention'
      ? 'Events after this id were deleted by retention; reload state and subscribe again.'
      : 'This event id was never issued by this server; reload state and subscribe again.',
    { lastEventId, reason },
  );
}

const SETTLED = prepared('tether_feed_settled', `SELECT tether_feed_settled()::text AS id`);

/**
 * The feed's settled id: every event at or below it is committed or will never exist. Waits for
 * the writers in flight below the newest id issued (their commits, not the other writers).
 */
export async function settledEventId(db: Sql): Promise<string> {
  const { rows } = await db.query<{ id: string }>(SETTLED);
  return rows[0]!.id;
}

export interface FeedPage {
  events: FeedEvent[];
  /** More events after the last one may already be committed. */
  full: boolean;
}

/**
 * Up to `limit` events after `afterId` that `viewer` may see and that pass `filter`, in id
 * order, up to the settled id. Throws `events.cursor_expired` when retention already deleted
 * events after `afterId`, or when `afterId` is beyond every settled id. The retention check and
 * the rows come from one statement, so from one snapshot.
 */
export async function readEventsAfter(
  db: Sql,
  viewer: ParticipantPrincipal,
  afterId: string,
  filter: FleetEventsFilter | undefined,
  limit: number,
): Promise<FeedPage> {
  const settled = await settledEventId(db);
  if (BigInt(afterId) > BigInt(settled)) throw cursorExpired(afterId, 'unknown');
  const params = new Params();
  const after = params.add(afterId);
  const where = [
    `e.id > ${after}::bigint`,
    `e.id <= ${params.add(settled)}::bigint`,
    ...filterSql(filter, params),
  ];
  if (!isAdmin(viewer)) where.push(eventVisibleSql(`${params.add(viewer.participantId)}::uuid`));
  const { rows } = await db.query<Partial<EventRow> & { deleted_through: string }>(
    `SELECT r.deleted_through::text AS deleted_through,
            page.*
       FROM fleet_event_retention r
       LEFT JOIN LATERAL (
         SELECT ${EVENT_COLUMNS} FROM fleet_events e
          WHERE ${where.join(' AND ')}
          ORDER BY e.id
          LIMIT ${params.add(limit)}
       ) page ON true`,
    params.values,
  );
  const head = rows[0];
  if (!head) throw new Error('fleet_event_retention has no row (migration 2 not applied?)');
  if (BigInt(afterId) < BigInt(head.deleted_through)) throw cursorExpired(afterId, 'retention');
  const events = rows.filter((r) => r.id != null).map((r) => toFeedEvent(r as EventRow));
  return { events, full: events.length === limit };
}

/**
 * `fleet.list`: one page of the feed over plain HTTP, for scripts and catch-up reads; from the
 * oldest retained event when `afterId` is omitted.
 */
export async function listEvents(
  db: Sql,
  viewer: ParticipantPrincipal,
  input: FleetListInput,
): Promise<FleetListOutput> {
  let after = input.afterId;
  if (after === undefined) {
    const { rows } = await db.query<{ id: string }>(
      `SELECT deleted_through::text AS id FROM fleet_event_retention`,
    );
    after = rows[0]?.id ?? '0';
  }
  const page = await readEventsAfter(db, viewer, after, input.filter, pageLimit(input.limit));
  return { items: page.events, lastEventId: page.events.at(-1)?.id ?? after, hasMore: page.full };
}

export interface FanOutPage {
  events: FeedEvent[];
  /** Every event up to here has been read: the last event's id, or the settled id. */
  through: string;
  /** The page is full: more events up to the settled id may follow. */
  full: boolean;
}

const READ_ALL_AFTER = prepared(
  'tether_feed_read_all_after',
  `SELECT ${EVENT_COLUMNS} FROM fleet_events e
    WHERE e.id > $1::bigint AND e.id <= $2::bigint ORDER BY e.id LIMIT $3`,
);

/**
 * Every event after `afterId` up to the settled id, oldest first, at most `limit`, without
 * visibility (fan-out).
 */
export async function readAllAfter(db: Sql, afterId: string, limit: number): Promise<FanOutPage> {
  const settled = await settledEventId(db);
  if (BigInt(settled) <= BigInt(afterId)) return { events: [], through: afterId, full: false };
  const { rows } = await db.query<EventRow>(READ_ALL_AFTER, [afterId, settled, limit]);
  const events = rows.map(toFeedEvent);
  const full = events.length === limit;
  return { events, through: full ? events[events.length - 1]!.id : settled, full };
}

/**
 * Which of the events in (`afterId`, `throughId`] each viewer may see: one query for a whole
 * batch and every non-admin subscriber of a replica.
 */
export async function visibleToViewers(
  db: Sql,
  afterId: string,
  throughId: string,
  participantIds: string[],
): Promise<Map<string, Set<string>>> {
  const visible = new Map<string, Set<string>>();
  if (participantIds.length === 0) return visible;
  const { rows } = await db.query<{ id: string; viewer: string }>(
    `SELECT e.id::text AS id, v.viewer::text AS viewer
       FROM fleet_events e
       CROSS JOIN unnest($3::uuid[]) AS v(viewer)
      WHERE e.id > $1::bigint AND e.id <= $2::bigint AND ${eventVisibleSql('v.viewer')}`,
    [afterId, throughId, participantIds],
  );
  for (const row of rows) {
    let set = visible.get(row.viewer);
    if (!set) visible.set(row.viewer, (set = new Set()));
    set.add(row.id);
  }
  return visible;
}

export interface RetentionPolicy {
  /** Events younger than this are kept. */
  retainMs: number;
  /** The newest this many events are kept. */
  retainCount: number;
  /** Rows deleted per statement. */
  batchSize: number;
}

/**
 * Deletes the oldest events that are both older than `retainMs` and outside the newest
 * `retainCount`, in batches, always a prefix of the id order, and records the highest deleted
 * id so resuming subscribers learn their cursor expired. Returns how many rows were deleted
 * (0 when another replica holds `lockKey`).
 */
export async function pruneEvents(
  db: Db,
  policy: RetentionPolicy,
  lockKey: string,
): Promise<number> {
  let deleted = 0;
  for (;;) {
    const removed = await db.tx(async (sql) => {
      // One pruner at a time across replicas; the others skip this round.
      const { rows: lock } = await sql.query<{ locked: boolean }>(
        `SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked`,
        [lockKey],
      );
      if (!lock[0]?.locked) return 0;
      const { rows } = await sql.query<{ deleted: number }>(
        `WITH bound AS (
           SELECT LEAST(
             (SELECT max(id) FROM fleet_events) - $2::bigint,
             COALESCE((SELECT min(id) - 1 FROM fleet_events
                        WHERE at >= now() - make_interval(secs => $1::float8 / 1000)),
                      (SELECT max(id) FROM fleet_events))
           ) AS through
         ), victims AS (
           SELECT id FROM fleet_events
            WHERE id <= (SELECT through FROM bound)
            ORDER BY id
            LIMIT $3
         ), gone AS (
           DELETE FROM fleet_events e USING victims v WHERE e.id = v.id RETURNING e.id
         ), mark AS (
           UPDATE fleet_event_retention
              SET deleted_through = GREATEST(deleted_through, (SELECT max(id) FROM gone)),
                  updated_at = now()
            WHERE EXISTS (SELECT 1 FROM gone)
         )
         SELECT count(*)::int AS deleted FROM gone`,
        [policy.retainMs, policy.retainCount, policy.batchSize],
      );
      return rows[0]!.deleted;
    });
    deleted += removed;
    if (removed < policy.batchSize) return deleted;
  }
}
