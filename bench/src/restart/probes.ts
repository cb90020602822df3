/**
 * The orchestrator's probes during a restart: when the new process listens (a TCP connect, not
 * an HTTP request, which a server flooded by reconnecting agents answers late), what the
 * database says about the fleet, and what the server's PostgreSQL sessions are doing.
 */
import { connect } from 'node:net';
import type pg from 'pg';
import { BASELINE_TABLE } from '../baseline/schema.js';
import type { Target } from '../servers.js';

const LISTEN_PROBE_MS = 50;

/** Resolves with the first instant a TCP connection to the port succeeds (null if aborted). */
export async function waitListening(port: number, signal: AbortSignal): Promise<number | null> {
  while (!signal.aborted) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return Date.now();
    await new Promise((resolve) => setTimeout(resolve, LISTEN_PROBE_MS));
  }
  return null;
}

/**
 * The agents the database counts back: online, with a sign of life the new process wrote —
 * presence written since `sinceMs` (the old process's exit). Tether: presence rows `online`
 * whose last beat is that recent (an attach is proof of life and writes it, as every beat
 * does); a row the old process left `online` does not count. The baseline keeps no connection
 * state: its rows written since then. Null until the exit is known.
 */
export async function dbBack(
  probe: pg.ClientBase,
  target: Target,
  nodeIds: string[],
  sinceMs: number | null,
): Promise<number | null> {
  if (sinceMs === null) return null;
  const sql =
    target === 'tether'
      ? `SELECT count(*)::int AS n FROM runtime_node_presence
          WHERE node_id = ANY($1) AND health_state = 'online'
            AND last_heartbeat_at > to_timestamp($2::float8 / 1000)`
      : `SELECT count(*)::int AS n FROM ${BASELINE_TABLE}
          WHERE node_id = ANY($1) AND last_heartbeat_at > to_timestamp($2::float8 / 1000)`;
  const { rows } = await probe.query<{ n: number }>(sql, [nodeIds, sinceMs]);
  return rows[0]?.n ?? 0;
}

/**
 * Tether's presence rows `online`, whatever wrote them: its shutdown should turn the nodes it
 * held offline, and a connect binds a node online again before it attaches. Null for the
 * baseline (no such state).
 */
export async function presenceOnline(
  probe: pg.ClientBase,
  target: Target,
  nodeIds: string[],
): Promise<number | null> {
  if (target !== 'tether') return null;
  const { rows } = await probe.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM runtime_node_presence
      WHERE node_id = ANY($1) AND health_state = 'online'`,
    [nodeIds],
  );
  return rows[0]?.n ?? 0;
}

/** The `application_name` of each server's connection pool. */
const POOL_NAMES: Record<Target, string> = { tether: 'tether-server', baseline: 'bench-baseline' };

/**
 * What the server's PostgreSQL sessions are doing right now, one label per session: `running`,
 * `idle`, `idle in transaction` (PostgreSQL waits for the server), or what an active session
 * waits on (`Lock:advisory`, `IO:WalSync`, …). Summed over the wave, it shows where the
 * database side of a reconnect goes.
 */
export async function sessionStates(
  probe: pg.ClientBase,
  target: Target,
): Promise<[string, number][]> {
  const { rows } = await probe.query<{ what: string; n: number }>(
    `SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'running')
                 ELSE coalesce(state, 'unknown') END AS what,
            count(*)::int AS n
       FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()
      GROUP BY 1`,
    [POOL_NAMES[target]],
  );
  return rows.map((r) => [r.what, r.n]);
}

export interface AttachWave {
  count: number;
  /** First and last `runtimenode.attached` event, ms after SIGTERM (database clock). */
  firstMs: number | null;
  lastMs: number | null;
}

/** Tether's own record of the wave: the session's attach events since SIGTERM. */
export async function attachWave(
  probe: pg.ClientBase,
  sessionId: string,
  sigtermAt: number,
): Promise<AttachWave> {
  const { rows } = await probe.query<{ n: number; first: number | null; last: number | null }>(
    `SELECT count(*)::int AS n,
            (extract(epoch FROM min(at)) * 1000)::float8 AS first,
            (extract(epoch FROM max(at)) * 1000)::float8 AS last
       FROM fleet_events
      WHERE session_id = $1 AND type = 'runtimenode.attached'
        AND at >= to_timestamp($2::float8 / 1000)`,
    [sessionId, sigtermAt],
  );
  const row = rows[0];
  return {
    count: row?.n ?? 0,
    firstMs: row?.first == null ? null : row.first - sigtermAt,
    lastMs: row?.last == null ? null : row.last - sigtermAt,
  };
}
