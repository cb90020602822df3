/**
 * The metrics history on real PostgreSQL: a fixed ring per node, at most one sample per sample
 * interval, written by the heartbeat's own statement (batch and single-beat path alike), the
 * latest metrics and their report time on the presence row, and `node.metrics`' read.
 */
import { describe, expect, it } from 'vitest';
import { getNode, getNodeMetrics } from '../../src/nodes/queries.js';
import { HeartbeatBatcher } from '../../src/runtime-nodes/heartbeat-batch.js';
import {
  metricsSamplesSql,
  type MetricsHistoryPolicy,
} from '../../src/runtime-nodes/metrics-history.js';
import { writePresence } from '../../src/runtime-nodes/presence.js';
import { heartbeat } from '../../src/runtime-nodes/service.js';
import type { Sql } from '../../src/db/pool.js';
import { updatesIn, useTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { makeNode, makeParticipant } from '../fixtures.js';
import type { NodePrincipal, ParticipantPrincipal } from '../../src/auth/principal.js';

const t = useTestDatabase();

/** Every beat its own sample (1 µs buckets: two transactions never share one), a ring of 5. */
const EVERY_BEAT: MetricsHistoryPolicy = { sampleIntervalMs: 0.001, samples: 5 };
/** One bucket for the whole test (the next boundary is years away). */
const ONE_BUCKET: MetricsHistoryPolicy = { sampleIntervalMs: 1e12, samples: 240 };

async function setup(): Promise<{ owner: ParticipantPrincipal; node: NodePrincipal }> {
  const owner = await makeParticipant(t.db);
  return { owner, node: await makeNode(t.db, owner) };
}

function beat(node: NodePrincipal, cpuPercent: number | undefined, batcher?: HeartbeatBatcher) {
  return heartbeat(
    t.db,
    node,
    {
      nodeId: node.nodeId,
      healthState: 'online',
      ...(cpuPercent === undefined ? {} : { metrics: { cpuPercent, uptimeSeconds: cpuPercent } }),
    },
    {},
    batcher,
  );
}

async function ringRows(nodeId: string): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM runtime_node_metrics WHERE node_id = $1`,
    [nodeId],
  );
  return rows[0]!.n;
}

describe('metrics history', () => {
  it('the ring keeps the last N samples in order and never more than N rows (batched beats)', async () => {
    const { owner, node } = await setup();
    const batcher = new HeartbeatBatcher(t.db, { metricsHistory: EVERY_BEAT });
    for (let cpu = 1; cpu <= 8; cpu++) await beat(node, cpu, batcher);
    expect(await ringRows(node.nodeId)).toBe(5);
    const history = await getNodeMetrics(t.db, owner, { nodeId: node.nodeId }, EVERY_BEAT);
    expect(history.maxSamples).toBe(5);
    expect(history.sampleIntervalMs).toBe(0.001);
    expect(history.samples.map((s) => s.cpuPercent)).toEqual([4, 5, 6, 7, 8]);
    expect(history.samples.map((s) => s.uptimeSeconds)).toEqual([4, 5, 6, 7, 8]);
    const times = history.samples.map((s) => new Date(s.at).getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('beats faster than the sample interval take one sample; presence keeps the latest metrics', async () => {
    const { owner, node } = await setup();
    const batcher = new HeartbeatBatcher(t.db, { metricsHistory: ONE_BUCKET });
    await beat(node, 10, batcher);
    const first = (await getNode(t.db, owner, node.nodeId)).presence.metricsReportedAt!;
    await beat(node, 20, batcher);
    await beat(node, 30, batcher);
    expect(await ringRows(node.nodeId)).toBe(1);
    const history = await getNodeMetrics(t.db, owner, { nodeId: node.nodeId }, ONE_BUCKET);
    expect(history.samples.map((s) => s.cpuPercent)).toEqual([10]);

    const view = await getNode(t.db, owner, node.nodeId);
    expect(view.presence.metrics).toEqual({ cpuPercent: 30, uptimeSeconds: 30 });
    expect(new Date(view.presence.metricsReportedAt!).getTime()).toBeGreaterThan(
      new Date(first).getTime(),
    );
  });

  it('a beat without metrics keeps the latest metrics and their time, and takes no sample', async () => {
    const { owner, node } = await setup();
    const batcher = new HeartbeatBatcher(t.db, { metricsHistory: EVERY_BEAT });
    await beat(node, 50, batcher);
    const before = await getNode(t.db, owner, node.nodeId);
    await beat(node, undefined, batcher);
    await beat(node, undefined); // the single-beat path too
    const after = await getNode(t.db, owner, node.nodeId);
    expect(after.presence.metrics).toEqual({ cpuPercent: 50, uptimeSeconds: 50 });
    expect(new Date(after.presence.metricsReportedAt!).getTime()).toBe(
      new Date(before.presence.metricsReportedAt!).getTime(),
    );
    expect(new Date(after.presence.lastHeartbeatAt!).getTime()).toBeGreaterThan(
      new Date(before.presence.lastHeartbeatAt!).getTime(),
    );
    expect(await ringRows(node.nodeId)).toBe(1);
  });

  it('the single-beat path (writePresence) samples into the same ring, custom gauges included', async () => {
    const { owner, node } = await setup();
    for (let i = 1; i <= 3; i++) {
      await writePresence(t.db, node.nodeId, {
        health: 'online',
        beat: true,
        metrics: JSON.stringify({
          memoryUsedBytes: i * 1_000,
          memoryTotalBytes: 16e9,
          gauges: { queue: i },
        }),
        cause: 'heartbeat',
        history: EVERY_BEAT,
      });
    }
    const history = await getNodeMetrics(t.db, owner, { nodeId: node.nodeId }, EVERY_BEAT);
    expect(history.samples.map((s) => s.gauges)).toEqual([
      { queue: 1 },
      { queue: 2 },
      { queue: 3 },
    ]);
    expect(history.samples[0]).toEqual({
      at: history.samples[0]!.at,
      memoryUsedBytes: 1_000,
      memoryTotalBytes: 16e9,
      gauges: { queue: 1 },
    });
  });

  it('since: only samples taken after it (exclusive), so polling with the last `at` repeats nothing', async () => {
    const { owner, node } = await setup();
    const batcher = new HeartbeatBatcher(t.db, { metricsHistory: EVERY_BEAT });
    for (let cpu = 1; cpu <= 3; cpu++) await beat(node, cpu, batcher);
    const all = await getNodeMetrics(t.db, owner, { nodeId: node.nodeId }, EVERY_BEAT);
    const since = all.samples[0]!.at;
    const later = await getNodeMetrics(t.db, owner, { nodeId: node.nodeId, since }, EVERY_BEAT);
    expect(later.samples.map((s) => s.cpuPercent)).toEqual([2, 3]);
    const none = await getNodeMetrics(
      t.db,
      owner,
      { nodeId: node.nodeId, since: all.samples.at(-1)!.at },
      EVERY_BEAT,
    );
    expect(none.samples).toEqual([]);
  });

  it('a smaller configured ring hides the slots beyond it', async () => {
    const { owner, node } = await setup();
    const batcher = new HeartbeatBatcher(t.db, { metricsHistory: EVERY_BEAT });
    for (let cpu = 1; cpu <= 5; cpu++) await beat(node, cpu, batcher);
    const smaller = { sampleIntervalMs: 0.001, samples: 2 };
    const history = await getNodeMetrics(t.db, owner, { nodeId: node.nodeId }, smaller);
    expect(history.samples.map((s) => s.cpuPercent)).toEqual([1, 2]);
  });

  it('rewriting a slot of a full ring is a HOT update', async () => {
    const { node } = await setup();
    const counts = await t.db.tx(async (sql) => {
      const write = (cpu: number) =>
        sql.query(
          `WITH src AS (SELECT $1::text AS node_id, 0::int AS sample_slot, $2::jsonb AS sample),
           ${metricsSamplesSql('src')}
           SELECT 1`,
          [node.nodeId, JSON.stringify({ cpuPercent: cpu })],
        );
      return updatesIn(sql, 'runtime_node_metrics', async () => {
        await write(1); // the slot's first sample: an insert
        await write(2); // the next lap: an update in place
        await write(3);
      });
    });
    expect(counts).toEqual({ updated: 2, hot: 2 });
  });

  it("a beat whose snapshot predates another beat's first sample in its slot overwrites it (no unique violation)", async () => {
    const { owner, node } = await setup();
    const ringOfOne: MetricsHistoryPolicy = { sampleIntervalMs: 0.001, samples: 1 };
    const write = (sql: Sql, cpuPercent: number) =>
      writePresence(sql, node.nodeId, {
        health: 'online',
        beat: true,
        metrics: JSON.stringify({ cpuPercent }),
        cause: 'heartbeat',
        history: ringOfOne,
      });
    let commitFirst: () => void = () => undefined;
    const firstWritten = new Promise<void>((resolve) => {
      const held = new Promise<void>((release) => (commitFirst = release));
      void t.db.tx(async (sql) => {
        await write(sql, 1); // inserts slot 0, holds the presence row until commit
        resolve();
        await held;
      });
    });
    await firstWritten;
    // The second beat takes its snapshot now, then waits for the presence row: it cannot see
    // the first beat's slot 0 when it gets there.
    const second = write(t.db, 2);
    try {
      await eventually(
        async () => {
          const { rows } = await t.db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          return rows[0]!.n;
        },
        (n) => n === 1,
      );
    } finally {
      commitFirst();
    }
    await expect(second).resolves.toMatchObject({ to: 'online' });
    const { samples } = await getNodeMetrics(t.db, owner, { nodeId: node.nodeId }, ringOfOne);
    expect(samples.map((s) => s.cpuPercent)).toEqual([2]);
  });

  it('node.metrics answers node.not_found to a participant who cannot see the node', async () => {
    const { node } = await setup();
    const stranger = await makeParticipant(t.db);
    await expect(
      getNodeMetrics(t.db, stranger, { nodeId: node.nodeId }, EVERY_BEAT),
    ).rejects.toMatchObject({ code: 'node.not_found' });
    const admin = await makeParticipant(t.db, 'admin');
    await expect(
      getNodeMetrics(t.db, admin, { nodeId: node.nodeId }, EVERY_BEAT),
    ).resolves.toMatchObject({ nodeId: node.nodeId, samples: [] });
  });
});
