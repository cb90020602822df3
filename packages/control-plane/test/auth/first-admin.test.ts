/**
 * The first admin under concurrency, on real PostgreSQL: replicas that start together on an
 * empty database create exactly one admin (`ensureFirstAdmin` is serialised), and a database
 * with an active admin gets none.
 */
import { describe, expect, it } from 'vitest';
import { ensureFirstAdmin } from '../../src/auth/participant-tokens.js';
import { createDb } from '../../src/db/pool.js';
import { useTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';

const t = useTestDatabase();

/** Statements of this database waiting for a lock right now. */
async function lockWaiters(): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return rows[0]!.n;
}

async function admins(): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM participants WHERE role = 'admin' AND disabled_at IS NULL`,
  );
  return rows[0]!.n;
}

describe('ensureFirstAdmin', () => {
  it('five replicas at once on an empty database: one admin, one token delivered; then none', async () => {
    const replicas = 5;
    // One pool per replica, as separate processes would have.
    const pools = Array.from({ length: replicas }, () =>
      createDb({ connectionString: t.url, max: 1 }),
    );
    try {
      let delivering = 0;
      const delivered: string[] = [];
      const results = await Promise.all(
        pools.map((db) =>
          ensureFirstAdmin(db, async (token) => {
            delivering++;
            // Hold the first delivery until every other replica is either delivering too (no
            // serialisation: the test fails below) or waiting for the first one's lock.
            await eventually(
              async () => ({ delivering, waiting: await lockWaiters() }),
              (v) => v.delivering === replicas || v.waiting >= replicas - v.delivering,
            );
            delivered.push(token);
          }),
        ),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      expect(delivered).toHaveLength(1);
      expect(await admins()).toBe(1);
      expect(await ensureFirstAdmin(t.db, () => Promise.reject(new Error('not called')))).toBe(
        null,
      );
    } finally {
      await Promise.all(pools.map((db) => db.close()));
    }
  });

  it('a token that cannot be delivered leaves no admin behind', async () => {
    await t.db.query(`UPDATE participants SET disabled_at = now() WHERE role = 'admin'`);
    await expect(
      ensureFirstAdmin(t.db, () => Promise.reject(new Error('disk full'))),
    ).rejects.toThrow('disk full');
    expect(await admins()).toBe(0);
  });
});
