/**
 * Fleet-wide figures for `/metrics`, read from the database by one statement at scrape
 * time and reused for `FLEET_REFRESH_MS`, so any number of scrapes (or scrapers) costs at most one
 * statement per replica per period. Every replica reports the same fleet-wide numbers (they come
 * from the one database): aggregate them across replicas with `max`, never `sum` (decision 0016).
 * The same statement measures this replica's feed lag: the age of the oldest committed event
 * its feed hub has not handed out yet (the database clock on both sides, so no skew).
 * A failed read reports the database as down and drops the fleet series instead of repeating
 * stale numbers.
 */
import type { Db } from '../db/pool.js';

/** At most one fleet statement per this many milliseconds per replica. */
export const FLEET_REFRESH_MS = 15_000;

/** A scrape waits at most this long for the statement; it then reports the database as down. */
const FLEET_READ_TIMEOUT_MS = 2_000;

export const HEALTH_STATES = ['online', 'degraded', 'offline'] as const;
/** An active node's current attachment (`none`: not attached to any session). */
export const ATTACHMENT_STATES = ['registering', 'online', 'degraded', 'none'] as const;

export interface FleetSnapshot {
  /** Active (not revoked) nodes by presence health. */
  nodesByHealth: Record<(typeof HEALTH_STATES)[number], number>;
  /** Active nodes by the state of their active attachment. */
  nodesByAttachment: Record<(typeof ATTACHMENT_STATES)[number], number>;
  revokedNodes: number;
  /** The newest committed fleet event id (0 for an empty feed). */
  headEventId: number;
  /** Age in seconds of the oldest committed event after `cursor` (0 when there is none, or no cursor). */
  feedLagSeconds: number;
}

/*
 * Every part reads an index or a small table, never the join of nodes × presence × attachments
 * (slower than every part together at fleet size: decision 0016): live presence and active attachments through their
 * partial indexes (offline and unattached are what is left of the active nodes), and node
 * counts by status from one pass over `nodes`. Revoked nodes have neither live presence nor
 * active attachments (revocation ends both in its transaction).
 */
const FLEET_SQL = `
  SELECT (SELECT COALESCE(json_object_agg(status, n), '{}') FROM (
            SELECT status, count(*)::int AS n FROM nodes GROUP BY status) s) AS nodes,
         (SELECT COALESCE(json_object_agg(health_state, n), '{}') FROM (
            SELECT health_state, count(*)::int AS n FROM runtime_node_presence
             WHERE health_state <> 'offline' GROUP BY health_state) h) AS live,
         (SELECT COALESCE(json_object_agg(state, n), '{}') FROM (
            SELECT state, count(*)::int AS n FROM runtime_node_attachments
             WHERE state IN ('registering', 'online', 'degraded') GROUP BY state) a) AS attached,
         (SELECT COALESCE(max(id), 0) FROM fleet_events)::text AS head,
         COALESCE((SELECT extract(epoch FROM clock_timestamp() - at)::float8
                     FROM fleet_events WHERE id > $1::bigint ORDER BY id LIMIT 1), 0) AS lag`;

interface FleetRow {
  nodes: Record<string, number>;
  live: Record<string, number>;
  attached: Record<string, number>;
  head: string;
  lag: number;
}

/** `cursor`: where this replica's feed hub is; null while it owes nothing (paused). */
export async function readFleetSnapshot(db: Db, cursor: string | null): Promise<FleetSnapshot> {
  const { rows } = await db.query<FleetRow>(FLEET_SQL, [cursor]);
  const row = rows[0]!;
  const active = row.nodes.active ?? 0;
  const online = row.live.online ?? 0;
  const degraded = row.live.degraded ?? 0;
  const registering = row.attached.registering ?? 0;
  const attachedOnline = row.attached.online ?? 0;
  const attachedDegraded = row.attached.degraded ?? 0;
  const snapshot: FleetSnapshot = {
    nodesByHealth: { online, degraded, offline: Math.max(0, active - online - degraded) },
    nodesByAttachment: {
      registering,
      online: attachedOnline,
      degraded: attachedDegraded,
      none: Math.max(0, active - registering - attachedOnline - attachedDegraded),
    },
    revokedNodes: row.nodes.revoked ?? 0,
    headEventId: Number(row.head),
    feedLagSeconds: Math.max(0, row.lag),
  };
  return snapshot;
}

/**
 * The cached snapshot: `current()` reads again when the last read is older than the refresh
 * period (one read in flight at a time), and returns null while the database cannot be read.
 */
export class FleetGauges {
  readonly #db: Db;
  readonly #cursor: () => string | null;
  readonly #refreshMs: number;
  #last: { at: number; snapshot: FleetSnapshot | null } | null = null;
  #reading: Promise<FleetSnapshot | null> | null = null;

  constructor(db: Db, cursor: () => string | null, refreshMs = FLEET_REFRESH_MS) {
    this.#db = db;
    this.#cursor = cursor;
    this.#refreshMs = refreshMs;
  }

  async current(): Promise<FleetSnapshot | null> {
    const last = this.#last;
    if (last && performance.now() - last.at < this.#refreshMs) return last.snapshot;
    this.#reading ??= this.#read().finally(() => {
      this.#reading = null;
    });
    return this.#reading;
  }

  async #read(): Promise<FleetSnapshot | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), FLEET_READ_TIMEOUT_MS);
      timer.unref();
    });
    const snapshot = await Promise.race([
      readFleetSnapshot(this.#db, this.#cursor()).catch(() => null),
      timeout,
    ]);
    clearTimeout(timer);
    this.#last = { at: performance.now(), snapshot };
    return snapshot;
  }
}
