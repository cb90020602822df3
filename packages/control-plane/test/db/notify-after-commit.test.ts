/**
 * `notifyAfterCommit` on real PostgreSQL, observed by a real LISTEN connection: a transaction's
 * notification goes out after its commit and never after a rollback; many requests in flight
 * fold into at most two notifications; `close()` sends what is pending before the pool ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/pool.js';
import { PgListener } from '../../src/db/listener.js';
import { useTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';

const t = useTestDatabase();

const received = new Map<string, number>();
let listener: PgListener;
const CHANNELS = ['t_after_commit', 't_rolled_back', 't_sentinel', 't_coalesced', 't_done'];

beforeAll(async () => {
  listener = new PgListener({ connectionString: t.url });
  for (const channel of CHANNELS) {
    listener.on(channel, () => received.set(channel, (received.get(channel) ?? 0) + 1));
  }
  await listener.start();
});
afterAll(async () => {
  await listener?.close();
});

const count = (channel: string): number => received.get(channel) ?? 0;

describe('notifyAfterCommit', () => {
  it('a transaction notifies once after COMMIT, however often it asked', async () => {
    const seenInside: number[] = [];
    await t.db.tx(async (sql) => {
      sql.notifyAfterCommit('t_after_commit');
      sql.notifyAfterCommit('t_after_commit');
      // Still inside: nothing may have been sent (a pool NOTIFY would not wait for this commit).
      await t.db.query(`SELECT pg_notify('t_sentinel', 'inside')`);
      await eventually(
        () => Promise.resolve(count('t_sentinel')),
        (n) => n === 1,
      );
      seenInside.push(count('t_after_commit'));
    });
    await eventually(
      () => Promise.resolve(count('t_after_commit')),
      (n) => n >= 1,
    );
    expect(seenInside).toEqual([0]);
    expect(count('t_after_commit')).toBe(1);
  });

  it('a rolled-back transaction notifies nothing', async () => {
    await expect(
      t.db.tx((sql) => {
        sql.notifyAfterCommit('t_rolled_back');
        return Promise.reject(new Error('roll back'));
      }),
    ).rejects.toThrow('roll back');
    // Requested after the rollback, on the same pool: once it has arrived, a notification the
    // rolled-back transaction had sent would have arrived too.
    t.db.notifyAfterCommit('t_sentinel');
    await eventually(
      () => Promise.resolve(count('t_sentinel')),
      (n) => n === 2,
    );
    expect(count('t_rolled_back')).toBe(0);
  });

  it('requests made while one is in flight fold into one more; close() sends it first', async () => {
    const db = createDb({ connectionString: t.url, max: 4 });
    for (let i = 0; i < 50; i++) db.notifyAfterCommit('t_coalesced');
    await db.close();
    // Both notifications committed before this one: delivered in commit order.
    await t.db.query(`SELECT pg_notify('t_done', '')`);
    await eventually(
      () => Promise.resolve(count('t_done')),
      (n) => n === 1,
    );
    expect(count('t_coalesced')).toBeGreaterThanOrEqual(1);
    expect(count('t_coalesced')).toBeLessThanOrEqual(2);
  });
});
