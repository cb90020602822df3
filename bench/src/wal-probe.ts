/**
 * Controlled WAL probe, not part of `pnpm bench` (docs/performance.md, "Running it"):
 * `tsx src/wal-probe.ts <label> [intervalMs] [samples]`.
 */
import { rm } from 'node:fs/promises';
import pg from 'pg';
import { sleep } from './ipc.js';
import { freeLoopbackPort, pgDelta, pgSnapshot, tableDelta } from './postgres.js';
import {
  createDb,
  HeartbeatBatcher,
  runMigrations,
  startEmbeddedPostgres,
} from './tether-internals.js';
import { randomMetrics } from './wire.js';

const [label = 'probe', intervalArg, samplesArg] = process.argv.slice(2);
const NODES = 2_000;
const WARMUP_ROUNDS = 6;
const ROUNDS = 20;
const OWNER = '00000000-0000-4000-8000-000000000001';
const TABLES = ['runtime_node_presence', 'runtime_node_metrics'];

const dataDir = '/tmp/tether-wal-probe-pg';
await rm(dataDir, { recursive: true, force: true });
const embedded = await startEmbeddedPostgres({
  dataDir,
  port: await freeLoopbackPort(),
  persistent: true,
});
const url = embedded.connectionString('postgres');
try {
  await runMigrations(url);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`INSERT INTO participants (id, name, role) VALUES ($1, 'probe', 'admin')`, [
    OWNER,
  ]);
  await admin.query(
    `INSERT INTO nodes (node_id, owner_participant_id, name, node_type)
     SELECT 'probe-node-' || lpad(g::text, 5, '0'), $2, 'n', 'd' FROM generate_series(1, $1) g`,
    [NODES, OWNER],
  );
  await admin.query(
    `INSERT INTO runtime_node_presence (node_id, health_state) SELECT node_id, 'offline' FROM nodes`,
  );
  const db = createDb({ connectionString: url, max: 4, applicationName: 'wal-probe' });
  const history =
    intervalArg === undefined
      ? undefined
      : { sampleIntervalMs: Number(intervalArg), samples: Number(samplesArg ?? 240) };
  const batcher = new HeartbeatBatcher(db, history ? { metricsHistory: history } : {});
  const ids = Array.from(
    { length: NODES },
    (_, i) => `probe-node-${String(i + 1).padStart(5, '0')}`,
  );
  let uptime = 0;
  const round = async (): Promise<void> => {
    uptime++;
    const metrics = (): string => JSON.stringify(randomMetrics(uptime));
    await Promise.all(
      ids.map((nodeId) =>
        batcher.submit({ nodeId, health: 'online', metrics: metrics(), connectionId: null }),
      ),
    );
  };
  /** WAL bytes per beat over `rounds` rounds, between snapshots `settleMs` after them. */
  const walPerBeat = async (rounds: number, settleMs: number) => {
    const before = await pgSnapshot(admin, TABLES);
    for (let i = 0; i < rounds; i++) await round();
    if (settleMs > 0) await sleep(settleMs);
    const after = await pgSnapshot(admin, TABLES);
    const { walBytes } = pgDelta(before, after, TABLES[0]!);
    return { perBeat: walBytes / (rounds * NODES), before, after };
  };
  for (let i = 0; i < WARMUP_ROUNDS; i++) await round();
  // Statistics are flushed about once a second by busy backends: wait for them to settle.
  await sleep(1_500);
  const steady = await walPerBeat(ROUNDS, 1_500);
  await admin.query('CHECKPOINT');
  const firstAfterCheckpoint = (await walPerBeat(1, 0)).perBeat;

  const delta = (table: string): string => {
    const { inserts, updates, hotUpdates } = tableDelta(steady.before, steady.after, table);
    const hot = updates > 0 ? ((hotUpdates / updates) * 100).toFixed(1) : '–';
    return `ins ${inserts} upd ${updates} hot ${hot} %`;
  };
  const sizes = await admin.query<{ rel: string; bytes: string }>(
    `SELECT relname AS rel, pg_total_relation_size(oid)::text AS bytes FROM pg_class
      WHERE relname = ANY($1)`,
    [TABLES],
  );
  console.log(
    JSON.stringify({
      label,
      history: history ?? 'default',
      beats: ROUNDS * NODES,
      walBytesPerBeatSteady: Math.round(steady.perBeat),
      walBytesPerBeatFirstRoundAfterCheckpoint: Math.round(firstAfterCheckpoint),
      presence: delta('runtime_node_presence'),
      ring: delta('runtime_node_metrics'),
      sizes: Object.fromEntries(sizes.rows.map((r) => [r.rel, Number(r.bytes)])),
    }),
  );
  await batcher.drain();
  await db.close();
  await admin.end();
} finally {
  await embedded.stop();
  await rm(dataDir, { recursive: true, force: true });
}
