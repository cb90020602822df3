/**
 * The staleness sweep: demotes presence whose last beat is too old (online → degraded after
 * `degradedAfterMs`, anything live → offline after `offlineAfterMs`), by the database clock.
 * Transition-only and idempotent: it returns exactly the rows it changed, and running it twice
 * (even concurrently: SKIP LOCKED) changes nothing more. It writes presence (and the feed) only.
 * A node is aged from its last beat or from when it last came online (a WebSocket connect is
 * proof of life too), whichever is later; a node with neither from when its presence changed.
 */
import type { PresenceHealthState } from '@tether/contracts';
import type { Sql } from '../db/pool.js';
import { feedWritten } from '../events/append.js';
import { presenceEventsSql } from './presence.js';

export interface SweepOptions {
  degradedAfterMs: number;
  offlineAfterMs: number;
}

export interface PresenceTransition {
  nodeId: string;
  from: PresenceHealthState;
  to: PresenceHealthState;
}

export async function sweepPresence(db: Sql, options: SweepOptions): Promise<PresenceTransition[]> {
  const { rows } = await db.query<{
    node_id: string;
    from_state: PresenceHealthState;
    to_state: PresenceHealthState;
  }>(
    `WITH thresholds AS MATERIALIZED (
       -- Computed once, not per row of the scan.
       SELECT now() - make_interval(secs => $1::float8 / 1000) AS degraded_before,
              now() - make_interval(secs => $2::float8 / 1000) AS offline_before
     ), stale AS (
       SELECT ctid, node_id, health_state AS from_state,
              CASE WHEN COALESCE(GREATEST(last_heartbeat_at, online_since), changed_at) < (SELECT offline_before FROM thresholds)
                   THEN 'offline' ELSE 'degraded' END AS to_state
         FROM runtime_node_presence
        WHERE health_state <> 'offline'
          AND COALESCE(GREATEST(last_heartbeat_at, online_since), changed_at) < (SELECT degraded_before FROM thresholds)
        FOR UPDATE SKIP LOCKED
     ), changed AS (
       UPDATE runtime_node_presence p
          SET health_state = stale.to_state,
              changed_at = now(),
              online_since = CASE WHEN stale.to_state = 'offline' THEN NULL ELSE p.online_since END,
              connection_id = CASE WHEN stale.to_state = 'offline' THEN NULL ELSE p.connection_id END
         FROM stale
        -- The rows are locked above, so their physical addresses hold until commit: a TID scan
        -- reaches them directly (a join on node_id walks the primary key per row, or hashes the
        -- whole table when the planner misjudges how many rows are stale).
        WHERE p.ctid = ANY(ARRAY(SELECT ctid FROM stale))
          AND p.ctid = stale.ctid AND p.health_state <> stale.to_state
        RETURNING p.node_id, stale.from_state, stale.to_state
     ), events AS (
       ${presenceEventsSql('changed', 'sweep')}
     )
     SELECT node_id, from_state, to_state FROM changed`,
    [options.degradedAfterMs, options.offlineAfterMs],
  );
  if (rows.length > 0) feedWritten(db);
  // Sorted here rather than in SQL: a mass demotion's sort would spill to disk there.
  return rows
    .map((r) => ({ nodeId: r.node_id, from: r.from_state, to: r.to_state }))
    .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
}
