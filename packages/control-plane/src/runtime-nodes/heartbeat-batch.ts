/**
 * Group commit for heartbeats. Beats that arrive while earlier ones are being written wait in a
 * queue and are then written together: one statement (one commit, one WAL flush) for up to
 * `maxBatch` nodes (more under a backlog, see below), keys sorted so concurrent batches lock
 * rows in the same order, one row write per node per batch (the last beat of a node in the
 * batch wins; all its callers share the result), and the `presence.changed` events of the
 * batch's transitions and the metrics history's samples (runtime-nodes/metrics-history.ts) in
 * the same statement.
 * Every beat is acknowledged only after its batch committed. The queue is bounded: beyond
 * `maxPending` a beat is refused with a retryable `system.unavailable` (with `retryAfterMs`)
 * instead of growing.
 *
 * Under a backlog a batch takes a free writer's even share of the queue, not just `maxBatch`:
 * the next batch starts when the previous one's answer is read, once per event-loop turn, and a
 * turn of a saturated server is long (every frame that arrived is read first). With a fixed size
 * the writers' capacity per turn was fixed too, so past it the queue filled, every beat was
 * refused, and refusing cost more than writing (docs/performance.md, "WS ingest").
 *
 * When idle, a beat is written at once (a batch of one). Under a steady stream a batch starts at
 * most every `lingerMs` (unless `maxBatch` beats are waiting): a commit costs PostgreSQL about
 * the same CPU for one row as for twenty, so gathering for a couple of milliseconds halves the
 * database's work at 5 000 beats/s for about a millisecond more per beat (docs/performance.md,
 * "Group commit's linger").
 */
import { TetherError, type RuntimeNodeHealthState } from '@tether/contracts';
import { prepared, type Db } from '../db/pool.js';
import { feedWritten } from '../events/append.js';
import {
  DEFAULT_METRICS_HISTORY,
  historyParams,
  metricsPresenceSetSql,
  metricsReportedAtSql,
  metricsSamplesSql,
  takesSampleSql,
  type MetricsHistoryPolicy,
} from './metrics-history.js';
import { presenceEventsSql } from './presence.js';

export interface BeatRequest {
  nodeId: string;
  health: RuntimeNodeHealthState;
  /** Serialised metrics, or null to keep the stored ones. */
  metrics: string | null;
  /** The WebSocket the beat came on (re-binds an unbound live node), or null. */
  connectionId: string | null;
}

export interface HeartbeatBatcherOptions {
  /** Nodes per statement while the queue is short (a backlog is shared out, see above). */
  maxBatch?: number;
  maxPending?: number;
  /** Batches written at the same time (each holds one pool connection). */
  maxConcurrent?: number;
  onBatch?: (size: number, ms: number) => void;
  /** A batch starts at most this often (ms) while fewer than `maxBatch` beats wait (0: at once). */
  lingerMs?: number;
  /** How beats' metrics are sampled into the history. */
  metricsHistory?: MetricsHistoryPolicy;
}

interface Pending {
  request: BeatRequest;
  resolve: (written: boolean) => void;
  reject: (error: unknown) => void;
}

/** $1–$4 the beats (node, health, metrics, connection), $5 sample interval, $6 history size. */
const WRITE_BATCH = prepared(
  'tether_heartbeat_batch',
  `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[])
           AS i(node_id, health, metrics, connection_id)
), prev AS (
  SELECT p.node_id, p.health_state, i.health, i.metrics, i.connection_id,
         p.metrics_slot AS slot_before,
         ${takesSampleSql('i.metrics', metricsReportedAtSql('p'), '$5::interval')} AS take_sample
    FROM runtime_node_presence p
    JOIN input i ON i.node_id = p.node_id
    JOIN nodes n ON n.node_id = p.node_id AND n.status = 'active'
   ORDER BY p.node_id
     FOR UPDATE OF p
), upd AS (
  UPDATE runtime_node_presence p SET
    health_state = prev.health,
    last_heartbeat_at = now(),
    online_since = CASE WHEN prev.health_state = 'offline' OR p.online_since IS NULL THEN now()
                        ELSE p.online_since END,
    connection_id = COALESCE(p.connection_id, prev.connection_id),
    -- Unchanged metrics keep the stored value (no new TOAST data for an identical document).
    metrics = CASE WHEN prev.metrics IS NULL OR prev.metrics = p.metrics THEN p.metrics
                   ELSE prev.metrics END,
    ${metricsPresenceSetSql({ metrics: 'prev.metrics', beat: 'true', takeSample: 'prev.take_sample', samples: '$6::int' })},
    changed_at = CASE WHEN prev.health_state <> prev.health THEN now() ELSE p.changed_at END
  FROM prev
  WHERE p.node_id = prev.node_id
  RETURNING p.node_id, prev.health_state AS from_state, p.health_state AS to_state,
            CASE WHEN prev.take_sample THEN prev.metrics END AS sample,
            prev.slot_before % $6::int AS sample_slot
), ev AS (
  ${presenceEventsSql('upd', 'heartbeat')}
), ${metricsSamplesSql('upd')}
SELECT node_id, from_state <> to_state AS changed FROM upd`,
);

/** The refusal of a beat the queue has no room for; a beat a second or so later finds room. */
export function queueFull(retryAfterMs: number): TetherError {
  return new TetherError('system.unavailable', 'Heartbeats are queued beyond capacity; retry.', {
    retryAfterMs,
  });
}

/** The default linger (docs/performance.md, "Group commit's linger"). */
export const DEFAULT_LINGER_MS = 2;

/** 0.5–1.5 s: spread, so refused nodes do not all come back in the same turn. */
export const queueRetryAfterMs = (): number => 500 + Math.floor(Math.random() * 1_000);

export class HeartbeatBatcher {
  readonly #db: Db;
  readonly #maxBatch: number;
  readonly #maxPending: number;
  readonly #maxConcurrent: number;
  readonly #lingerMs: number;
  readonly #onBatch: HeartbeatBatcherOptions['onBatch'];
  readonly #historyParams: [string, number];
  /** How beats' metrics are sampled (the single-beat path samples the same way). */
  readonly metricsHistory: MetricsHistoryPolicy;
  #queue: Pending[] = [];
  #inflight = 0;
  #scheduled = false;
  /** When the last batch started (performance.now()); -Infinity: never. */
  #lastStart = -Infinity;
  readonly #settled = new Set<Promise<void>>();

  constructor(db: Db, options: HeartbeatBatcherOptions = {}) {
    this.#db = db;
    this.#maxBatch = options.maxBatch ?? 1_000;
    this.#maxPending = options.maxPending ?? 20_000;
    this.#maxConcurrent = options.maxConcurrent ?? 2;
    this.#lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
    this.#onBatch = options.onBatch;
    this.metricsHistory = options.metricsHistory ?? DEFAULT_METRICS_HISTORY;
    this.#historyParams = historyParams(this.metricsHistory);
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** The queue is at `maxPending`: the next beat is refused (`queueFull`). */
  get full(): boolean {
    return this.#queue.length >= this.#maxPending;
  }

  /**
   * Resolves true once the beat is committed, false when the batch could not write it (unknown
   * or revoked node, or no presence row): the caller then takes the single-beat path.
   */
  submit(request: BeatRequest): Promise<boolean> {
    if (this.full) return Promise.reject(queueFull(queueRetryAfterMs()));
    return new Promise<boolean>((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves when everything submitted so far has been written (or has failed). */
  async drain(): Promise<void> {
    while (this.#settled.size > 0 || this.#queue.length > 0) {
      if (this.#settled.size === 0) await new Promise((resolve) => setImmediate(resolve));
      else await Promise.all([...this.#settled]);
    }
  }

  /** Milliseconds until the next batch may start (0: now). */
  #wait(): number {
    if (this.#queue.length >= this.#maxBatch) return 0;
    return Math.max(0, this.#lastStart + this.#lingerMs - performance.now());
  }

  #schedule(): void {
    if (this.#scheduled || this.#inflight >= this.#maxConcurrent) return;
    this.#scheduled = true;
    const run = (): void => {
      this.#scheduled = false;
      this.#flush();
    };
    // Everything that arrives during this turn of the event loop (or the linger) joins the batch.
    const wait = this.#wait();
    if (wait > 0) setTimeout(run, wait);
    else setImmediate(run);
  }

  #flush(): void {
    while (this.#inflight < this.#maxConcurrent && this.#queue.length > 0) {
      if (this.#wait() > 0) {
        this.#schedule();
        return;
      }
      const share = Math.ceil(this.#queue.length / (this.#maxConcurrent - this.#inflight));
      const batch = this.#queue.splice(0, Math.max(this.#maxBatch, share));
      this.#inflight++;
      this.#lastStart = performance.now();
      const done: Promise<void> = this.#write(batch).finally(() => {
        this.#inflight--;
        this.#settled.delete(done);
        // What queued meanwhile goes out now, not on a later event-loop turn: under overload a
        // turn grows long (every frame that arrived is read first) and batches would starve.
        this.#flush();
      });
      this.#settled.add(done);
    }
  }

  async #write(batch: Pending[]): Promise<void> {
    // One row per node: the last beat of a node in this batch is the one written.
    const latest = new Map<string, BeatRequest>();
    for (const p of batch) latest.set(p.request.nodeId, p.request);
    const requests = [...latest.values()].sort((a, b) =>
      a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0,
    );
    const started = performance.now();
    try {
      const { rows } = await this.#db.query<{ node_id: string; changed: boolean }>(WRITE_BATCH, [
        requests.map((r) => r.nodeId),
        requests.map((r) => r.health),
        requests.map((r) => r.metrics),
        requests.map((r) => r.connectionId),
        ...this.#historyParams,
      ]);
      this.#onBatch?.(requests.length, performance.now() - started);
      if (rows.some((r) => r.changed)) feedWritten(this.#db);
      const written = new Set(rows.map((r) => r.node_id));
      for (const p of batch) p.resolve(written.has(p.request.nodeId));
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }
}
