/**
 * The one writer of presence transitions outside the sweep. A single statement locks the row,
 * reads its previous health, applies the change and — only when the health actually changed —
 * appends the `presence.changed` event, so concurrent writers never double- or under-report.
 * Returns null when there is nothing to write: an unknown node, or a revoked one asked to go live.
 */
import type { PresenceCause, PresenceHealthState } from '@tether/contracts';
import type { Sql } from '../db/pool.js';

export interface PresenceChange {
  health: PresenceHealthState;
  /** Set last_heartbeat_at to the database clock. */
  beat: boolean;
  /** Serialised metrics to store, or null to keep the previous ones. */
  metrics?: string | null;
  cause: PresenceCause;
}

export interface PresenceTransitionResult {
  from: PresenceHealthState;
  to: PresenceHealthState;
}

const WRITE_PRESENCE = `
WITH prev AS (
  -- Going live needs an active identity: a beat racing a revocation cannot revive a revoked node.
  SELECT p.node_id, p.health_state FROM runtime_node_presence p
   WHERE p.node_id = $1
     AND ($2 = 'offline' OR EXISTS (SELECT 1 FROM nodes n WHERE n.node_id = p.node_id AND n.status = 'active'))
   FOR UPDATE OF p
), upd AS (
  UPDATE runtime_node_presence p SET
    health_state = $2,
    last_heartbeat_at = CASE WHEN $3 THEN now() ELSE p.last_heartbeat_at END,
    online_since = CASE WHEN $2 = 'offline' THEN NULL
                        WHEN prev.health_state = 'offline' OR p.online_since IS NULL THEN now()
                        ELSE p.online_since END,
    connection_id = CASE WHEN $2 = 'offline' THEN NULL ELSE p.connection_id END,
    metrics = COALESCE($4::jsonb, p.metrics),
    changed_at = CASE WHEN prev.health_state <> $2 THEN now() ELSE p.changed_at END
  FROM prev
  WHERE p.node_id = prev.node_id
  RETURNING p.node_id, prev.health_state AS from_state, p.health_state AS to_state
), ev AS (
  INSERT INTO fleet_events (type, node_id, payload)
  SELECT 'presence.changed', node_id, jsonb_build_object('from', from_state, 'to', to_state, 'cause', $5::text)
    FROM upd WHERE from_state <> to_state
)
SELECT from_state, to_state FROM upd`;

export async function writePresence(
  sql: Sql,
  nodeId: string,
  change: PresenceChange,
): Promise<PresenceTransitionResult | null> {
  const params = [nodeId, change.health, change.beat, change.metrics ?? null, change.cause];
  for (let attempt = 0; attempt < 2; attempt++) {
    const { rows } = await sql.query<{
      from_state: PresenceHealthState;
      to_state: PresenceHealthState;
    }>(WRITE_PRESENCE, params);
    if (rows[0]) return { from: rows[0].from_state, to: rows[0].to_state };
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
