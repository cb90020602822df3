/**
 * Migration 5 on real PostgreSQL: writers of the feed never wait for each other, and readers of
 * the feed never read past a writer still in flight below them — so "every event after N" is
 * final once read, even though a newer id may commit before an older one.
 */
import { describe, expect, it } from 'vitest';
import type { Sql } from '../../src/db/pool.js';
import { readAllAfter, settledEventId, type FeedEvent } from '../../src/events/feed.js';
import { FeedHub } from '../../src/events/hub.js';
import { useTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { makeParticipant } from '../fixtures.js';

const t = useTestDatabase();

async function appendOne(sql: Sql, n: number): Promise<string> {
  const { rows } = await sql.query<{ id: string }>(
    `INSERT INTO fleet_events (type, payload) VALUES ('node.updated', jsonb_build_object('n', $1::int))
     RETURNING id::text AS id`,
    [n],
  );
  return rows[0]!.id;
}

/** Sessions of this database waiting on an advisory lock, by application name. */
async function waitingOnAdvisory(applicationName: string): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = $1
        AND wait_event_type = 'Lock' AND wait_event = 'advisory'`,
    [applicationName],
  );
  return rows[0]!.n;
}

/**
 * Runs `fn` in a transaction on its own connection that stays open until `commit` or `rollback`.
 */
function openTransaction<T>(fn: (sql: Sql) => Promise<T>): {
  result: Promise<T>;
  commit: () => Promise<void>;
  rollback: () => Promise<void>;
} {
  let decide!: (commit: boolean) => void;
  const gate = new Promise<boolean>((resolve) => (decide = resolve));
  let ran!: (value: T) => void;
  const result = new Promise<T>((resolve) => (ran = resolve));
  const done = t.db.tx(async (sql) => {
    ran(await fn(sql));
    if (!(await gate)) throw new Error('rolled back on purpose');
  });
  return {
    result,
    commit: async () => {
      decide(true);
      await done;
    },
    rollback: async () => {
      decide(false);
      await expect(done).rejects.toThrow('rolled back on purpose');
    },
  };
}

describe('feed writers in parallel, readers up to the settled id', () => {
  it('a newer event commits while an older one is in flight; nobody reads it before the older one settles', async () => {
    const start = await settledEventId(t.db);
    const older = openTransaction((sql) => appendOne(sql, 1));
    const olderId = await older.result;

    // Another writer is not held up by the open one: with a lock timeout it would fail if it
    // had to wait for any lock at all.
    const newerId = await t.db.tx(async (sql) => {
      await sql.query(`SET LOCAL lock_timeout = '2s'`);
      return appendOne(sql, 2);
    });
    expect(BigInt(newerId)).toBeGreaterThan(BigInt(olderId));
    const { rows: committed } = await t.db.query<{ id: string }>(
      `SELECT id::text AS id FROM fleet_events WHERE id > $1`,
      [start],
    );
    expect(committed.map((r) => r.id)).toEqual([newerId]);

    // A reader of "everything after start" waits for the open writer instead of returning the
    // newer event alone.
    const reader = readAllAfter(t.db, start, 100);
    let readerDone = false;
    void reader.then(() => (readerDone = true));
    await eventually(
      () => waitingOnAdvisory('tether-test'),
      (n) => n >= 1,
    );
    expect(readerDone).toBe(false);

    await older.commit();
    const page = await reader;
    expect(page.events.map((e) => e.id)).toEqual([olderId, newerId]);
    expect(BigInt(page.through)).toBeGreaterThanOrEqual(BigInt(newerId));
  });

  it('a writer that rolls back releases the readers, and its id never appears', async () => {
    const start = await settledEventId(t.db);
    const doomed = openTransaction((sql) => appendOne(sql, 3));
    const doomedId = await doomed.result;
    const keptId = await appendOne(t.db, 4);
    const reader = readAllAfter(t.db, start, 100);
    await eventually(
      () => waitingOnAdvisory('tether-test'),
      (n) => n >= 1,
    );
    await doomed.rollback();
    const page = await reader;
    expect(page.events.map((e) => e.id)).toEqual([keptId]);
    expect(page.events.map((e) => e.id)).not.toContain(doomedId);
  });

  it('the hub hands out the older event first, once the open writer commits', async () => {
    const admin = await makeParticipant(t.db, 'admin');
    const hub = new FeedHub(t.db);
    await hub.start();
    const sub = hub.subscribe(admin, {});
    const first = sub.next();
    const older = openTransaction((sql) => appendOne(sql, 5));
    const olderId = await older.result;
    const newerId = await appendOne(t.db, 6);
    hub.poke();
    await eventually(
      () => waitingOnAdvisory('tether-test'),
      (n) => n >= 1,
    );
    await older.commit();
    await hub.settle();
    const a: IteratorResult<FeedEvent> = await first;
    const b: IteratorResult<FeedEvent> = await sub.next();
    expect([a.done ? null : a.value.id, b.done ? null : b.value.id]).toEqual([olderId, newerId]);
    await sub.return(undefined);
    await hub.close();
  });
  it('readers wait for feed writers only: other advisory locks (negative hashtext keys, keys below -2^62) are not writers', async () => {
    const other = openTransaction(async (sql) => {
      await sql.query(`SELECT pg_advisory_xact_lock(hashtext('tether.presence_sweep'))`);
      await sql.query(`SELECT pg_advisory_xact_lock(-5000000000000000000)`);
    });
    await other.result;
    try {
      const settled = await t.db.tx(async (sql) => {
        // Waiting on either lock would hit this timeout and fail the test.
        await sql.query(`SET LOCAL statement_timeout = '2s'`);
        return settledEventId(sql);
      });
      expect(BigInt(settled)).toBeGreaterThanOrEqual(0n);
    } finally {
      await other.commit();
    }
  });
});
