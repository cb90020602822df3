/**
 * The one writer of presence transitions outside the sweep. A single statement locks the row,
 * reads its previous health, applies the change and — only when the health actually changed —
 * appends the `presence.changed` event, so concurrent writers never double- or under-report.
 * Returns null when there is nothing to write: an unknown node, or a revoked one asked to go live.
 */
import { PresenceCause, type PresenceHealthState } from '@tether/contracts';
import { prepared, type Sql } from '../db/pool.js';
import { eventPayloadSql, feedWritten } from '../events/append.js';
import {
  DEFAULT_METRICS_HISTORY,
  historyParams,
  metricsPresenceSetSql,
  metricsReportedAtSql,
  metricsSamplesSql,
  takesSampleSql,
  type MetricsHistoryPolicy,
} from './metrics-history.js';

export interface PresenceChange {
  health: PresenceHealthState;
  /** Set last_heartbeat_at to the database clock. */
  beat: boolean;
  /** Serialised metrics to store (and maybe sample), or null to keep the previous ones. */
  metrics?: string | null;
  /** How metrics are sampled into the history (the defaults when omitted). */
  history?: MetricsHistoryPolicy;
  cause: PresenceCause;
  /**
   * The WebSocket connection the change arrived on: a live node with no bound connection
   * (e.g. swept offline while its socket stayed open) is bound to it again. A bound connection
   * is never replaced here, so a late beat from an old socket cannot steal a newer binding.
   */
  connectionId?: string | null;
}

export interface PresenceTransitionResult {
  from: PresenceHealthState;
  to: PresenceHealthState;
}

/** The `presence.changed` payload of a row with from_state and to_state, as SQL. */
export function presenceChangedPayloadSql(cause: PresenceCause | { sql: string }): string {
  // A literal cause is one of the contract's values (checked here), so it is safe to inline.
  const causeSql = typeof cause === 'string' ? `'${PresenceCause.parse(cause)}'` : cause.sql;
  return eventPayloadSql('presence.changed', {
    from: 'from_state',
    to: 'to_state',
    cause: causeSql,
  });
}

/**
 * The statement part that records every transition of `source` — a CTE with node_id,
 * from_state and to_state — as one `presence.changed` event with `cause` (a contract value, or
 * an SQL expression such as a parameter holding one). Every presence writer ends with it, so a
 * change and its event share one statement.
 *
 * The caller announces the events (`feedWritten`) when the statement returned a transition.
 * The statement announces itself as a feed writer (migration 5) before it draws its first id:
 * the CASE makes that the first thing done for the first transition, once per statement (an
 * init plan), and never for a statement without transitions (a batch of plain heartbeats is no
 * feed writer).
 */
export function presenceEventsSql(source: string, cause: PresenceCause | { sql: string }): string {
  return `INSERT INTO fleet_events (id, type, node_id, payload)
  SELECT nextval('fleet_events_id_seq'), 'presence.changed', node_id,
         ${presenceChangedPayloadSql(cause)}
    FROM ${source}
   WHERE CASE WHEN from_state <> to_state THEN (SELECT tether_feed_writer()) ELSE false END`;
}

/**
 * The SET list of a presence change (`p` is the presence row, `prev` a CTE with its previous
 * `health_state`; the other arguments are SQL expressions): the health, the beat time when
 * `beat`, `online_since` started on going live and cleared on going offline, the connection
 * kept (or taken when none is bound) unless offline, metrics kept unless new ones are given
 * (with their report time, and the history's next slot when `takeSample`), `changed_at` on a
 * transition. Shared by every writer that applies a `PresenceChange`.
 */
export function presenceChangeSetSql(
  prev: string,
  v: {
    health: string;
    beat: string;
    metrics: string;
    connection: string;
    takeSample?: string;
    samples?: string;
  },
): string {
  return `health_state = ${v.health},
    last_heartbeat_at = CASE WHEN ${v.beat} THEN now() ELSE p.last_heartbeat_at END,
    online_since = CASE WHEN ${v.health} = 'offline' THEN NULL
                        WHEN ${prev}.health_state = 'offline' OR p.online_since IS NULL THEN now()
                        ELSE p.online_since END,
    connection_id = CASE WHEN ${v.health} = 'offline' THEN NULL
                         ELSE COALESCE(p.connection_id, ${v.connection}) END,
    metrics = COALESCE(${v.metrics}, p.metrics),
    ${metricsPresenceSetSql({ metrics: v.metrics, beat: v.beat, takeSample: v.takeSample ?? 'false', samples: v.samples ?? '1' })},
    changed_at = CASE WHEN ${prev}.health_state <> ${v.health} THEN now() ELSE p.changed_at END`;
}

/**
 * $1 node, $2 health, $3 beat, $4 metrics, $5 cause, $6 connection, $7 sample interval,
 * $8 history size.
 */
const WRITE_PRESENCE = prepared(
  'tether_write_presence',
  `
WITH prev AS (
  -- Going live needs an active identity: a beat racing a revocation cannot revive a revoked node.
  SELECT p.node_id, p.health_state, p.metrics_slot AS slot_before,
         ${takesSampleSql('$4::jsonb', metricsReportedAtSql('p'), '$7::interval')} AS take_sample
    FROM runtime_node_presence p
   WHERE p.node_id = $1
     AND ($2 = 'offline' OR EXISTS (SELECT 1 FROM nodes n WHERE n.node_id = p.node_id AND n.status = 'active'))
   FOR UPDATE OF p
), upd AS (
  UPDATE runtime_node_presence p SET
    ${presenceChangeSetSql('prev', { health: '$2', beat: '$3', metrics: '$4::jsonb', connection: '$6::text', takeSample: 'prev.take_sample', samples: '$8::int' })}
  FROM prev
  WHERE p.node_id = prev.node_id
  RETURNING p.node_id, prev.health_state AS from_state, p.health_state AS to_state,
            CASE WHEN prev.take_sample THEN $4::jsonb END AS sample,
            prev.slot_before % $8::int AS sample_slot
), ev AS (
  ${presenceEventsSql('upd', { sql: '$5::text' })}
), ${metricsSamplesSql('upd')}
SELECT from_state, to_state FROM upd`,
);

export async function writePresence(
  sql: Sql,
  nodeId: string,
  change: PresenceChange,
): Promise<PresenceTransitionResult | null> {
  const params = [
    nodeId,
    change.health,
    change.beat,
    change.metrics ?? null,
    change.cause,
    change.connectionId ?? null,
    ...historyParams(change.history ?? DEFAULT_METRICS_HISTORY),
  ];
  for (let attempt = 0; attempt < 2; attempt++) {
    const { rows } = await sql.query<{
      from_state: PresenceHealthState;
      to_state: PresenceHealthState;
    }>(WRITE_PRESENCE, params);
    if (rows[0]) {
      if (rows[0].from_state !== rows[0].to_state) feedWritten(sql);
      return { from: rows[0].from_state, to: rows[0].to_state };
    }
    const { rows: node } = await sql.query<{ status: string }>(
      `SELECT status FROM nodes WHERE node_id = $1`,
      [nodeId],
    );
    // Unknown node, or a revoked one asked to go live: nothing to write.
    if (node[0]?.status !== 'active' && change.health !== 'offline') return null;
    if (!node[0]) return null;
    // Every node gets a presence row at registration; recreate one that was lost, then retry.
    await sql.query(
      `INSERT INTO runtime_node_presence (node_id, health_state) VALUES ($1, 'offline') ON CONFLICT (node_id) DO NOTHING`,
      [nodeId],
    );
  }
  throw new Error(`presence row for ${nodeId} could not be written`);
}

/**
 * A registered node's presence row, created `offline` in the registering transaction, so every
 * known node is listed (offline) until it beats, including after a server restart.
 */
export async function insertOfflinePresence(sql: Sql, nodeId: string): Promise<void> {
  await sql.query(
    `INSERT INTO runtime_node_presence (node_id, health_state) VALUES ($1, 'offline')`,
    [nodeId],
  );
}

/**
 * Nodes authenticated on WebSockets: each connection becomes its node's binding and presence goes
 * online (a degraded node stays degraded: its beats say how it is). `online_since` is set when
 * it was offline. Revoked nodes are never bound. One statement for any number of connections
 * (a reconnect wave binds thousands at once), rows locked in node order.
 */
const BIND_CONNECTIONS = prepared(
  'tether_bind_connections',
  `
WITH req AS (
  SELECT * FROM unnest($1::text[], $2::text[]) AS r(node_id, connection_id)
), prev AS (
  SELECT p.node_id, p.health_state FROM runtime_node_presence p
    JOIN req ON req.node_id = p.node_id
    JOIN nodes n ON n.node_id = p.node_id AND n.status = 'active'
   ORDER BY p.node_id
   FOR UPDATE OF p
), upd AS (
  UPDATE runtime_node_presence p SET
    connection_id = req.connection_id,
    health_state = CASE WHEN prev.health_state = 'offline' THEN 'online' ELSE prev.health_state END,
    online_since = CASE WHEN prev.health_state = 'offline' OR p.online_since IS NULL THEN now()
                        ELSE p.online_since END,
    changed_at = CASE WHEN prev.health_state = 'offline' THEN now() ELSE p.changed_at END
  FROM prev JOIN req ON req.node_id = prev.node_id
  WHERE p.node_id = prev.node_id
  RETURNING p.node_id, prev.health_state AS from_state, p.health_state AS to_state
), ev AS (
  ${presenceEventsSql('upd', 'connection')}
)
SELECT node_id, from_state, to_state FROM upd`,
);

export interface BoundNode {
  nodeId: string;
  from: PresenceHealthState;
  to: PresenceHealthState;
}

/**
 * Binds each connection to its node. A node listed twice keeps its last connection (a newer
 * socket replaces an older one's binding anyway). Returns the nodes bound; revoked or unknown
 * nodes are left out.
 */
export async function bindConnections(
  sql: Sql,
  connections: readonly { nodeId: string; connectionId: string }[],
): Promise<BoundNode[]> {
  const latest = new Map<string, string>();
  for (const c of connections) latest.set(c.nodeId, c.connectionId);
  if (latest.size === 0) return [];
  const { rows } = await sql.query<{
    node_id: string;
    from_state: PresenceHealthState;
    to_state: PresenceHealthState;
  }>(BIND_CONNECTIONS, [[...latest.keys()], [...latest.values()]]);
  if (rows.some((r) => r.from_state !== r.to_state)) feedWritten(sql);
  return rows.map((r) => ({ nodeId: r.node_id, from: r.from_state, to: r.to_state }));
}

const RELEASE_CONNECTIONS = prepared(
  'tether_release_connections',
  `WITH closed AS (
       SELECT * FROM unnest($1::text[], $2::text[]) AS c(node_id, connection_id)
     ), prev AS (
       SELECT p.node_id, p.health_state FROM runtime_node_presence p
         JOIN closed c ON c.node_id = p.node_id AND c.connection_id = p.connection_id
        ORDER BY p.node_id
          FOR UPDATE OF p
     ), upd AS (
       UPDATE runtime_node_presence p SET
         health_state = 'offline', online_since = NULL, connection_id = NULL,
         changed_at = CASE WHEN prev.health_state <> 'offline' THEN now() ELSE p.changed_at END
       FROM prev
       WHERE p.node_id = prev.node_id
       RETURNING p.node_id, prev.health_state AS from_state, p.health_state AS to_state
     ), ev AS (
       ${presenceEventsSql('upd', 'connection')}
     )
     SELECT node_id, from_state FROM upd WHERE from_state <> 'offline' ORDER BY node_id`,
);

/**
 * Sockets closed (or stopped answering pings): each node still bound to one of them goes
 * offline, `online_since` and the binding clear. Guarded by the connection id, so the close of
 * an old socket never clears a newer connection's binding. One statement for any number.
 */
export async function releaseConnections(
  sql: Sql,
  connections: readonly { nodeId: string; connectionId: string }[],
): Promise<{ nodeId: string; from: PresenceHealthState }[]> {
  if (connections.length === 0) return [];
  const { rows } = await sql.query<{ node_id: string; from_state: PresenceHealthState }>(
    RELEASE_CONNECTIONS,
    [connections.map((c) => c.nodeId), connections.map((c) => c.connectionId)],
  );
  // Only transitions are returned (and recorded as events).
  if (rows.length > 0) feedWritten(sql);
  return rows.map((r) => ({ nodeId: r.node_id, from: r.from_state }));
}
