/**
 * Group commit for heartbeats on real PostgreSQL: beats submitted together are written as one
 * batch, one row write and at most one event per node, acknowledged after commit; unknown or
 * revoked nodes are handed back; the queue is bounded; a stream's beats linger into one batch;
 * overlapping batches never deadlock.
 */
import { TetherError } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { HeartbeatBatcher, type BeatRequest } from '../../src/runtime-nodes/heartbeat-batch.js';
import { useTestDatabase } from '../db.js';
import { makeNode, makeParticipant, presenceOf } from '../fixtures.js';

const t = useTestDatabase();

async function nodes(count: number): Promise<string[]> {
  const owner = await makeParticipant(t.db);
  const made = [];
  for (let i = 0; i < count; i++) made.push((await makeNode(t.db, owner)).nodeId);
  return made;
}

const beat = (nodeId: string, extra: Partial<BeatRequest> = {}): BeatRequest => ({
  nodeId,
  health: 'online',
  metrics: null,
  connectionId: null,
  ...extra,
});

async function presenceEvents(nodeIds: string[]): Promise<Map<string, string[]>> {
  const { rows } = await t.db.query<{ node_id: string; to: string; cause: string }>(
    `SELECT node_id, payload->>'to' AS to, payload->>'cause' AS cause FROM fleet_events
      WHERE type = 'presence.changed' AND node_id = ANY($1) ORDER BY id`,
    [nodeIds],
  );
  const byNode = new Map<string, string[]>();
  for (const r of rows)
    byNode.set(r.node_id, [...(byNode.get(r.node_id) ?? []), `${r.to}:${r.cause}`]);
  return byNode;
}

describe('heartbeat group commit', () => {
  it('beats submitted together are one batch: every node online, one event each, all acknowledged', async () => {
    const ids = await nodes(200);
    const batches: number[] = [];
    const batcher = new HeartbeatBatcher(t.db, { onBatch: (size) => batches.push(size) });
    const results = await Promise.all(ids.map((id) => batcher.submit(beat(id))));
    expect(results.every((r) => r === true)).toBe(true);
    expect(batches).toEqual([200]);
    for (const id of ids) expect((await presenceOf(t.db, id))?.health_state).toBe('online');
    const events = await presenceEvents(ids);
    expect([...events.values()].every((e) => e.length === 1 && e[0] === 'online:heartbeat')).toBe(
      true,
    );
    expect(events.size).toBe(200);

    // Beating again changes nothing visible: no events, last_heartbeat_at moves.
    const before = (await presenceOf(t.db, ids[0]!))!.last_heartbeat_at!;
    expect(await Promise.all(ids.map((id) => batcher.submit(beat(id))))).not.toContain(false);
    expect((await presenceOf(t.db, ids[0]!))!.last_heartbeat_at!.getTime()).toBeGreaterThan(
      before.getTime(),
    );
    expect((await presenceEvents(ids)).get(ids[0]!)).toEqual(['online:heartbeat']);
  });

  it('two beats of one node in a batch: one row write (the last wins), both acknowledged', async () => {
    const [id] = await nodes(1);
    const batches: number[] = [];
    const batcher = new HeartbeatBatcher(t.db, { onBatch: (size) => batches.push(size) });
    const results = await Promise.all([
      batcher.submit(beat(id!, { health: 'online', metrics: '{"cpuPercent":10}' })),
      batcher.submit(beat(id!, { health: 'degraded', metrics: '{"cpuPercent":90}' })),
    ]);
    expect(results).toEqual([true, true]);
    expect(batches).toEqual([1]);
    const { rows } = await t.db.query<{ health_state: string; metrics: unknown }>(
      `SELECT health_state, metrics FROM runtime_node_presence WHERE node_id = $1`,
      [id],
    );
    expect(rows[0]).toEqual({ health_state: 'degraded', metrics: { cpuPercent: 90 } });
    expect((await presenceEvents([id!])).get(id!)).toEqual(['degraded:heartbeat']);
    // A beat without metrics keeps the stored ones.
    await batcher.submit(beat(id!, { health: 'degraded' }));
    const kept = await t.db.query<{ metrics: unknown }>(
      `SELECT metrics FROM runtime_node_presence WHERE node_id = $1`,
      [id],
    );
    expect(kept.rows[0]!.metrics).toEqual({ cpuPercent: 90 });
  });

  it('unknown and revoked nodes are handed back (false) without touching anything', async () => {
    const [alive, revoked] = await nodes(2);
    await t.db.query(`UPDATE nodes SET status = 'revoked', revoked_at = now() WHERE node_id = $1`, [
      revoked,
    ]);
    const batcher = new HeartbeatBatcher(t.db);
    const results = await Promise.all([
      batcher.submit(beat(alive!)),
      batcher.submit(beat(revoked!)),
      batcher.submit(beat('no-such-node')),
    ]);
    expect(results).toEqual([true, false, false]);
    expect((await presenceOf(t.db, revoked!))?.health_state).toBe('offline');
  });

  it('the queue is bounded: beyond maxPending a beat gets a retryable system.unavailable', async () => {
    const ids = await nodes(6);
    const batcher = new HeartbeatBatcher(t.db, { maxPending: 5 });
    const submitted = ids.map((id) => batcher.submit(beat(id)).catch((e: unknown) => e));
    const results = await Promise.all(submitted);
    expect(results.slice(0, 5)).toEqual([true, true, true, true, true]);
    const refused = results[5];
    expect(refused).toBeInstanceOf(TetherError);
    expect((refused as TetherError).code).toBe('system.unavailable');
    expect((refused as TetherError).retryable).toBe(true);
    const { retryAfterMs } = (refused as TetherError).details as { retryAfterMs: number };
    expect(retryAfterMs).toBeGreaterThanOrEqual(500);
    expect(retryAfterMs).toBeLessThanOrEqual(1_500);
    expect(batcher.full).toBe(false);
  });

  it('a backlog is shared out between the writers, not cut into maxBatch pieces', async () => {
    // Ten beats queued in one turn, two writers, maxBatch 2: two statements of five each (fixed
    // pieces of two would take five statements and, under overload, five event-loop turns).
    const ids = await nodes(10);
    const batches: number[] = [];
    const batcher = new HeartbeatBatcher(t.db, {
      maxBatch: 2,
      onBatch: (size) => batches.push(size),
    });
    const results = await Promise.all(ids.map((id) => batcher.submit(beat(id))));
    expect(results.every((r) => r === true)).toBe(true);
    expect(batches).toEqual([5, 5]);
    // Three beats: shared out too, two and one (never less than maxBatch per statement).
    batches.length = 0;
    await Promise.all(ids.slice(0, 3).map((id) => batcher.submit(beat(id))));
    expect(batches.sort()).toEqual([1, 2]);
  });

  it('under a stream, beats wait out the linger and share a batch; an idle beat goes at once', async () => {
    const ids = await nodes(4);
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const stream = async (lingerMs: number): Promise<number[]> => {
      const batches: number[] = [];
      const batcher = new HeartbeatBatcher(t.db, { lingerMs, onBatch: (n) => batches.push(n) });
      // One beat, then three more, each in a later event-loop turn while the first is written.
      const written = [batcher.submit(beat(ids[0]!))];
      for (const id of ids.slice(1)) {
        await turn();
        written.push(batcher.submit(beat(id)));
      }
      expect(await Promise.all(written)).toEqual([true, true, true, true]);
      return batches;
    };
    // Without a linger the second writer takes the next beat alone: more statements than two.
    expect((await stream(0)).length).toBeGreaterThan(2);
    // With one, the first beat (the batcher was idle) is written alone and at once; the three
    // that follow within the linger are one statement.
    expect(await stream(500)).toEqual([1, 3]);
  });

  it('overlapping batches from several writers, in opposite orders, never deadlock', async () => {
    const ids = await nodes(60);
    const writers = [
      new HeartbeatBatcher(t.db, { maxBatch: 25 }),
      new HeartbeatBatcher(t.db, { maxBatch: 25 }),
      new HeartbeatBatcher(t.db, { maxBatch: 25 }),
    ];
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(
        writers.flatMap((w, i) => {
          const order = i % 2 === 0 ? ids : [...ids].reverse();
          return order.map((id) =>
            w.submit(beat(id, { health: round % 2 === 0 ? 'online' : 'degraded' })),
          );
        }),
      );
      expect(results.every((r) => r === true)).toBe(true);
    }
    // Every transition was recorded once: online, then degraded/online alternating.
    const events = await presenceEvents(ids);
    for (const id of ids) {
      expect(events.get(id)).toEqual(
        Array.from({ length: 10 }, (_, r) => (r % 2 === 0 ? 'online' : 'degraded')).map(
          (s) => `${s}:heartbeat`,
        ),
      );
    }
  });
});
