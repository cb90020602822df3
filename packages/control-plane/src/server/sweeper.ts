/**
 * The maintenance loop of a replica: every sweep interval it tries to become the sweeper (a
 * transaction-scoped advisory lock, so exactly one replica sweeps at a time and another takes
 * over on its next tick if the holder dies), demotes stale presence, and now and then prunes
 * the event feed and the full rate-limit buckets.
 *
 * It protects the fleet from the server's own stalls: after a start it demotes nothing until
 * one offline threshold has passed (nodes need time to reconnect), and when its own timer fired
 * far too late (event-loop stall) or the database was unreachable, the silence may be ours, not
 * the nodes': it holds demotions for one heartbeat interval so every live node can beat again,
 * instead of marking the whole fleet offline at once.
 */
import type { Logger } from 'pino';
import type { Db } from '../db/pool.js';
import { pruneEvents, type RetentionPolicy } from '../events/feed.js';
import { pruneSharedBuckets } from '../limits/shared-buckets.js';
import { sweepPresence, type PresenceTransition } from '../runtime-nodes/sweep.js';
import type { Metrics } from '../observability/metrics.js';

const SWEEP_LOCK_KEY = 'tether.presence_sweep';
const PRUNE_LOCK_KEY = 'tether.events_prune';

export interface SweeperOptions {
  sweepIntervalMs: number;
  degradedAfterMs: number;
  offlineAfterMs: number;
  heartbeatIntervalMs: number;
  retention: RetentionPolicy;
  pruneIntervalMs: number;
  /** Injected clock (ms, monotonic). */
  now?: () => number;
}

export type HoldReason = 'startup' | 'stall';

export class Sweeper {
  readonly #db: Db;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #options: SweeperOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #lastTickAt: number;
  #holdUntil: number;
  #holdReason: HoldReason | null = 'startup';
  #databaseFailing = false;
  #lastPruneAt: number;

  constructor(db: Db, log: Logger, metrics: Metrics, options: SweeperOptions) {
    this.#db = db;
    this.#log = log;
    this.#metrics = metrics;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    const started = this.#now();
    this.#lastTickAt = started;
    this.#holdUntil = started + options.offlineAfterMs;
    this.#lastPruneAt = started;
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#running) {
        // The loop is alive (this timer fired); only the previous round is slow, e.g. waiting
        // for a pool connection under a reconnect wave. That is no stall of ours.
        this.#lastTickAt = this.#now();
        return;
      }
      this.#running = this.tick()
        .then(() => undefined)
        .catch((err: unknown) => this.#log.warn({ err }, 'maintenance tick failed'))
        .finally(() => {
          this.#running = null;
        });
    }, this.#options.sweepIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /** Why demotions are on hold right now, if they are. */
  get holding(): HoldReason | null {
    return this.#now() < this.#holdUntil ? this.#holdReason : null;
  }

  /** Long enough for every live node to beat again, never longer than the offline threshold. */
  get #stallHoldMs(): number {
    return Math.min(this.#options.heartbeatIntervalMs, this.#options.offlineAfterMs);
  }

  #hold(reason: HoldReason, forMs: number, detail: Record<string, unknown>): void {
    const until = this.#now() + forMs;
    if (until <= this.#holdUntil) return;
    this.#holdUntil = until;
    this.#holdReason = reason;
    this.#metrics.sweepHolds.inc({ reason });
    this.#log.warn({ reason, holdMs: forMs, ...detail }, 'presence sweep on hold');
  }

  /** One round: stall check, sweep if this replica holds the lock, prune when due. */
  async tick(): Promise<PresenceTransition[]> {
    const { sweepIntervalMs } = this.#options;
    const now = this.#now();
    const gap = now - this.#lastTickAt;
    this.#lastTickAt = now;
    if (gap > sweepIntervalMs + Math.max(sweepIntervalMs, 1_000)) {
      this.#hold('stall', this.#stallHoldMs, { tickGapMs: Math.round(gap) });
    }
    let transitions: PresenceTransition[];
    try {
      transitions = await this.#sweep();
    } catch (err) {
      this.#databaseFailing = true;
      this.#metrics.sweepFailures.inc();
      throw err;
    }
    this.#metrics.sweepLastCompleted.set(Date.now() / 1000);
    if (this.#now() - this.#lastPruneAt >= this.#options.pruneIntervalMs) {
      this.#lastPruneAt = this.#now();
      const deleted = await pruneEvents(this.#db, this.#options.retention, PRUNE_LOCK_KEY);
      if (deleted > 0) this.#log.info({ deleted }, 'fleet events pruned');
      // Full rate-limit buckets are the same as none; any replica may drop them.
      await pruneSharedBuckets(this.#db);
    }
    return transitions;
  }

  async #sweep(): Promise<PresenceTransition[]> {
    const started = performance.now();
    const transitions = await this.#db.tx(async (sql) => {
      const { rows } = await sql.query<{ locked: boolean }>(
        `SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked`,
        [SWEEP_LOCK_KEY],
      );
      if (this.#databaseFailing) {
        // Reached the database again after failing: the nodes could not beat either.
        this.#databaseFailing = false;
        this.#hold('stall', this.#stallHoldMs, { databaseRecovered: true });
      }
      // Checked after reaching the database: a stall that ends here still holds this round.
      if (!rows[0]?.locked || this.holding) return null;
      return sweepPresence(sql, {
        degradedAfterMs: this.#options.degradedAfterMs,
        offlineAfterMs: this.#options.offlineAfterMs,
      });
    });
    if (transitions === null) return [];
    this.#metrics.sweepDuration.observe((performance.now() - started) / 1000);
    for (const t of transitions) this.#metrics.sweepTransitions.inc({ to: t.to });
    if (transitions.length > 0)
      this.#log.info({ transitions: transitions.length }, 'presence sweep');
    return transitions;
  }
}
