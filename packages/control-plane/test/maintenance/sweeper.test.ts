/**
 * The maintenance loop on real PostgreSQL with an injected clock: the startup grace, holding
 * demotions after a stall of the server or its database, one sweeper at a time, and retention.
 */
import { describe, expect, it } from 'vitest';
import { pruneEvents } from '../../src/events/feed.js';
import { heartbeat } from '../../src/runtime-nodes/service.js';
import { createLogger } from '../../src/server/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Sweeper, type SweeperOptions } from '../../src/server/sweeper.js';
import { useTestDatabase } from '../db.js';
import { ageHeartbeat, makeNode, makeParticipant, presenceOf } from '../fixtures.js';

const t = useTestDatabase();

function sweeperAt(clock: { now: number }, overrides: Partial<SweeperOptions> = {}): Sweeper {
  return new Sweeper(t.db, createLogger('silent'), createMetrics(t.db), {
    sweepIntervalMs: 100,
    degradedAfterMs: 30_000,
    offlineAfterMs: 60_000,
    heartbeatIntervalMs: 15_000,
    retention: { retainMs: 86_400_000, retainCount: 1_000_000, batchSize: 1_000 },
    pruneIntervalMs: 3_600_000,
    now: () => clock.now,
    ...overrides,
  });
}

/** A node that beat `secondsAgo` seconds ago (by the database clock). */
async function staleNode(secondsAgo: number) {
  const owner = await makeParticipant(t.db);
  const node = await makeNode(t.db, owner);
  await heartbeat(t.db, node, { nodeId: node.nodeId, healthState: 'online' });
  await ageHeartbeat(t.db, node.nodeId, secondsAgo);
  return node;
}

/** Ticks every interval up to `until`, like the timer would. */
async function tickUntil(sweeper: Sweeper, clock: { now: number }, until: number) {
  const seen = [];
  while (clock.now < until) {
    clock.now = Math.min(until, clock.now + 100);
    seen.push(...(await sweeper.tick()));
  }
  return seen;
}

describe('the sweeper', () => {
  it('demotes nothing until one offline threshold after start, then sweeps', async () => {
    const clock = { now: 0 };
    const sweeper = sweeperAt(clock);
    const node = await staleNode(120);
    expect(sweeper.holding).toBe('startup');
    const during = await tickUntil(sweeper, clock, 59_900);
    expect(during.filter((tr) => tr.nodeId === node.nodeId)).toEqual([]);
    expect((await presenceOf(t.db, node.nodeId))?.health_state).toBe('online');

    const after = await tickUntil(sweeper, clock, 60_100);
    expect(sweeper.holding).toBeNull();
    expect(after.filter((tr) => tr.nodeId === node.nodeId)).toEqual([
      { nodeId: node.nodeId, from: 'online', to: 'offline' },
    ]);
  });

  it('after an event-loop stall it holds demotions for one heartbeat interval instead of demoting the fleet', async () => {
    const clock = { now: 0 };
    const sweeper = sweeperAt(clock);
    await tickUntil(sweeper, clock, 60_100);
    const node = await staleNode(45);

    // The timer fires 20 s late: the server, not the nodes, was silent.
    clock.now += 20_000;
    expect((await sweeper.tick()).filter((tr) => tr.nodeId === node.nodeId)).toEqual([]);
    expect(sweeper.holding).toBe('stall');
    const held = await tickUntil(sweeper, clock, clock.now + 14_800);
    expect(held.filter((tr) => tr.nodeId === node.nodeId)).toEqual([]);
    expect((await presenceOf(t.db, node.nodeId))?.health_state).toBe('online');

    // A node that is really gone is still demoted once the hold ends.
    const resumed = await tickUntil(sweeper, clock, clock.now + 300);
    expect(sweeper.holding).toBeNull();
    expect(resumed.filter((tr) => tr.nodeId === node.nodeId)).toEqual([
      { nodeId: node.nodeId, from: 'online', to: 'degraded' },
    ]);
  });

  it('after the database was unreachable it holds too (the nodes could not beat either)', async () => {
    const clock = { now: 0 };
    const sweeper = sweeperAt(clock);
    await tickUntil(sweeper, clock, 60_100);
    const node = await staleNode(45);
    await t.db.query(`ALTER TABLE runtime_node_presence RENAME TO runtime_node_presence_away`);
    try {
      clock.now += 100;
      await expect(sweeper.tick()).rejects.toThrow();
    } finally {
      await t.db.query(`ALTER TABLE runtime_node_presence_away RENAME TO runtime_node_presence`);
    }
    clock.now += 100;
    expect(await sweeper.tick()).toEqual([]);
    expect(sweeper.holding).toBe('stall');
    expect((await presenceOf(t.db, node.nodeId))?.health_state).toBe('online');
  });

  it('only the holder of the advisory lock sweeps; the other replica takes over when it is free', async () => {
    const clock = { now: 0 };
    const sweeper = sweeperAt(clock);
    await tickUntil(sweeper, clock, 60_100);
    const node = await staleNode(45);
    const other = await t.db.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SELECT pg_advisory_xact_lock(hashtext('tether.presence_sweep'))`);
      clock.now += 100;
      expect((await sweeper.tick()).filter((tr) => tr.nodeId === node.nodeId)).toEqual([]);
      await other.query('COMMIT');
    } finally {
      other.release();
    }
    clock.now += 100;
    expect((await sweeper.tick()).filter((tr) => tr.nodeId === node.nodeId)).toEqual([
      { nodeId: node.nodeId, from: 'online', to: 'degraded' },
    ]);
  });
});

describe('event retention', () => {
  async function feedIds(): Promise<bigint[]> {
    const { rows } = await t.db.query<{ id: string }>(`SELECT id FROM fleet_events ORDER BY id`);
    return rows.map((r) => BigInt(r.id));
  }

  it('keeps the newest N and everything younger than the age limit; records what it deleted', async () => {
    await t.db.query(
      `INSERT INTO fleet_events (type, payload) SELECT 'node.updated', '{}' FROM generate_series(1, 60)`,
    );
    const before = await feedIds();
    // Everything is young: nothing goes, whatever the count.
    expect(
      await pruneEvents(t.db, { retainMs: 3_600_000, retainCount: 5, batchSize: 7 }, 'test.p'),
    ).toBe(0);
    // Old enough, but the newest 25 stay. Batches of 7 delete a prefix of the id order.
    await t.db.query(`UPDATE fleet_events SET at = at - interval '2 hours'`);
    const deleted = await pruneEvents(
      t.db,
      { retainMs: 3_600_000, retainCount: 25, batchSize: 7 },
      'test.p',
    );
    const after = await feedIds();
    expect(deleted).toBe(before.length - 25);
    expect(after).toEqual(before.slice(-25));
    const { rows } = await t.db.query<{ deleted_through: string }>(
      `SELECT deleted_through FROM fleet_event_retention`,
    );
    expect(BigInt(rows[0]!.deleted_through)).toBe(before[before.length - 26]);
  });

  it('another pruner holding the lock makes this one skip the round', async () => {
    await t.db.query(
      `INSERT INTO fleet_events (type, payload, at)
       SELECT 'node.updated', '{}', now() - interval '2 hours' FROM generate_series(1, 10)`,
    );
    const other = await t.db.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SELECT pg_advisory_xact_lock(hashtext('test.locked'))`);
      expect(
        await pruneEvents(t.db, { retainMs: 1_000, retainCount: 0, batchSize: 100 }, 'test.locked'),
      ).toBe(0);
      await other.query('COMMIT');
    } finally {
      other.release();
    }
    expect(
      await pruneEvents(t.db, { retainMs: 1_000, retainCount: 0, batchSize: 100 }, 'test.locked'),
    ).toBeGreaterThanOrEqual(10);
  });
});
