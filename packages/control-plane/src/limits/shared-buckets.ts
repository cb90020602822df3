/**
 * Token buckets kept in PostgreSQL, so every replica draws on one budget per key (migration 8,
 * `rate_limit_buckets`). Invariants:
 *  - one statement per take, decided atomically by PostgreSQL (an upsert on the bucket's row);
 *  - times are the database clock's, so replicas with skewed clocks agree;
 *  - a refusal is remembered in this process until the bucket can allow again: further takes
 *    of that key are refused here, with the remaining wait, without a statement. That is exact,
 *    not an approximation: refusals do not change a bucket, and takes elsewhere only push its
 *    next allowance later, which this process learns on its first take after the wait.
 * The bucket: `burst` tokens, refilled at `perMinute`; a take costs one token.
 */
import { prepared, type Db } from '../db/pool.js';

export interface SharedBucketSpec {
  /** Separates the limits sharing the table ('public', 'auth_failures'). */
  scope: string;
  perMinute: number;
  burst: number;
}

/**
 * GCRA in one upsert. $3 = the refill interval (ms per token), $4 = the tolerance
 * ((burst - 1) intervals). A take is allowed when the bucket's `tat` is at most the tolerance
 * ahead of now; it then moves `tat` one interval on. Refused, `tat` stays, and the wait is how
 * far `tat` is beyond the tolerance.
 */
const TAKE = prepared(
  'tether_rate_limit_take',
  `WITH clock AS (SELECT extract(epoch FROM now())::float8 * 1000 AS now_ms)
   INSERT INTO rate_limit_buckets AS b (scope, key, tat_ms, allowed)
   SELECT $1, $2, now_ms + $3::float8, true FROM clock
   ON CONFLICT (scope, key) DO UPDATE SET
     allowed = greatest(b.tat_ms, (SELECT now_ms FROM clock)) - (SELECT now_ms FROM clock) <= $4::float8,
     tat_ms = CASE
       WHEN greatest(b.tat_ms, (SELECT now_ms FROM clock)) - (SELECT now_ms FROM clock) <= $4::float8
       THEN greatest(b.tat_ms, (SELECT now_ms FROM clock)) + $3::float8
       ELSE b.tat_ms
     END
   RETURNING allowed, ceil(tat_ms - (SELECT now_ms FROM clock) - $4::float8)::int AS wait_ms`,
);

/** Deletes full buckets (same as absent); run now and then by the maintenance loop. */
export async function pruneSharedBuckets(db: Db): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM rate_limit_buckets WHERE tat_ms < extract(epoch FROM now())::float8 * 1000`,
  );
  return rowCount;
}

/** Refusals remembered per process; beyond this many keys the expired ones are dropped. */
const MAX_REMEMBERED = 100_000;

export class SharedBuckets {
  readonly #db: Db;
  readonly #scope: string;
  readonly #intervalMs: number;
  readonly #toleranceMs: number;
  readonly #now: () => number;
  /** key → when (this process's monotonic clock) the bucket may allow again. */
  readonly #refusedUntil = new Map<string, number>();

  constructor(db: Db, spec: SharedBucketSpec, now: () => number = () => performance.now()) {
    if (!(spec.perMinute > 0) || !(spec.burst >= 1)) {
      throw new RangeError('shared buckets: perMinute must be > 0 and burst ≥ 1');
    }
    this.#db = db;
    this.#scope = spec.scope;
    this.#intervalMs = 60_000 / spec.perMinute;
    this.#toleranceMs = (Math.floor(spec.burst) - 1) * this.#intervalMs;
    this.#now = now;
  }

  /** Takes one token: 0 if allowed, else the milliseconds until one is available (≥ 1). */
  async take(key: string): Promise<number> {
    const until = this.#refusedUntil.get(key);
    if (until !== undefined) {
      const left = Math.ceil(until - this.#now());
      if (left > 0) return left;
      this.#refusedUntil.delete(key);
    }
    const { rows } = await this.#db.query<{ allowed: boolean; wait_ms: number }>(TAKE, [
      this.#scope,
      key,
      this.#intervalMs,
      this.#toleranceMs,
    ]);
    const row = rows[0]!;
    if (row.allowed) return 0;
    const wait = Math.max(1, row.wait_ms);
    this.#remember(key, this.#now() + wait);
    return wait;
  }

  #remember(key: string, until: number): void {
    if (this.#refusedUntil.size >= MAX_REMEMBERED) {
      const now = this.#now();
      for (const [k, u] of this.#refusedUntil) if (u <= now) this.#refusedUntil.delete(k);
      // Still full: forgetting costs only a statement on the next take, never correctness.
      if (this.#refusedUntil.size >= MAX_REMEMBERED) this.#refusedUntil.clear();
    }
    this.#refusedUntil.set(key, until);
  }
}
