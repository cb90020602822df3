/**
 * The staleness sweep over a large registry, timed against PostgreSQL in its own database: the
 * control plane's `sweepPresence` as the server runs it, vs the baseline's one UPDATE (see
 * docs/performance.md, "Scenarios").
 */
import { BASELINE_SCHEMA, BASELINE_TABLE } from '../baseline/schema.js';
import { createFleet } from '../identities.js';
import { preciseNow } from '../ipc.js';
import { compareRows, metric, ms, num, stepLead, table, type Column } from '../report.js';
import type { Scenario } from '../scenario.js';
import { createDb, runMigrations, sweepPresence, type Db } from '../tether-internals.js';

const DATABASE = 'tether_bench_sweep';
const DEGRADED_AFTER_MS = 30_000;
const OFFLINE_AFTER_MS = 60_000;

/** Per fleet state: its row label, last-beat age (seconds) of node number `i`, runs (full, quick). */
const STATES = {
  fresh: { label: 'all fresh (0 %)', age: '0', runs: [5, 2] },
  'one-percent': {
    label: '1 % stale',
    age: `CASE WHEN i % 200 = 0 THEN 90 WHEN i % 200 = 100 THEN 45 ELSE 0 END`,
    runs: [5, 2],
  },
  'all-stale': { label: 'mass demotion (100 %)', age: '120', runs: [3, 1] },
};
type FleetState = keyof typeof STATES;

/** Every node online, its last beat as old as the state says. */
const PREPARE = {
  runtime_node_presence: `online_since = now() - interval '1 hour', changed_at = now() - interval '1 hour',`,
  [BASELINE_TABLE]: '',
};

async function prepare(db: Db, state: FleetState): Promise<void> {
  for (const [table, tetherOnly] of Object.entries(PREPARE)) {
    await db.query(
      `UPDATE ${table} p
          SET health_state = 'online', ${tetherOnly}
              last_heartbeat_at = now() - make_interval(secs => ${STATES[state].age})
         FROM (SELECT node_id, right(node_id, 6)::int AS i FROM ${table}) n
        WHERE p.node_id = n.node_id`,
    );
  }
  await db.query(`VACUUM (ANALYZE) runtime_node_presence, ${BASELINE_TABLE}, fleet_events`);
}

type Timing = { ms: number; transitions: number };

async function timed(sweep: () => Promise<number>): Promise<Timing> {
  const started = preciseNow();
  const transitions = await sweep();
  return { ms: preciseNow() - started, transitions };
}

/** Tether's sweep: in a transaction holding its advisory lock, as the server runs it. */
const tetherSweep = (db: Db): Promise<number> =>
  db.tx(async (sql) => {
    const { rows } = await sql.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked`,
      ['tether.presence_sweep'],
    );
    if (!rows[0]?.locked) throw new Error('sweep lock held elsewhere');
    const options = { degradedAfterMs: DEGRADED_AFTER_MS, offlineAfterMs: OFFLINE_AFTER_MS };
    return (await sweepPresence(sql, options)).length;
  });

const demoted = `CASE WHEN last_heartbeat_at < now() - interval '${OFFLINE_AFTER_MS} milliseconds'
                      THEN 'offline' ELSE 'degraded' END`;
const baselineSweep = async (db: Db): Promise<number> =>
  (
    await db.query(
      `UPDATE ${BASELINE_TABLE} SET health_state = ${demoted}
        WHERE health_state <> 'offline'
          AND last_heartbeat_at < now() - interval '${DEGRADED_AFTER_MS} milliseconds'
          AND health_state <> ${demoted}`,
    )
  ).rowCount ?? 0;

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
};
const times = (runs: Timing[]): number[] => runs.map((x) => x.ms);
const worst = (runs: Timing[]): number => Math.max(...times(runs));

const SWEEP: Column<Timing[]>[] = [
  metric('transitions', num, (runs) => runs[0]?.transitions, false),
  metric('median ms', ms, (runs) => median(times(runs))),
  metric('worst ms', ms, worst),
  metric('runs', num, (runs) => runs.length, false),
];

export const sweep: Scenario = {
  name: 'sweep',
  title: 'Staleness sweep over the registry, timed against PostgreSQL',
  needs: () => ({ nodes: 0 }),
  async run(ctx) {
    const rows = ctx.quick ? 20_000 : 100_000;
    await ctx.postgres.recreate(DATABASE);
    const url = ctx.postgres.urlFor(DATABASE);
    await runMigrations(url);
    const db = createDb({ connectionString: url, max: 2, applicationName: 'tether-bench-sweep' });
    const cases: { state: FleetState; tether: Timing[]; baseline: Timing[] }[] = [];
    try {
      const setupStarted = preciseNow();
      await createFleet(db, 'sweep', rows);
      await db.query(BASELINE_SCHEMA);
      await db.query(
        `INSERT INTO ${BASELINE_TABLE} (node_id, health_state, last_heartbeat_at)
         SELECT node_id, 'online', now() FROM runtime_node_presence`,
      );
      ctx.log(
        `  ${num(rows)} nodes registered in ${num((preciseNow() - setupStarted) / 1000, 1)} s`,
      );
      for (const state of Object.keys(STATES) as FleetState[]) {
        const result = { state, tether: [] as Timing[], baseline: [] as Timing[] };
        for (let i = 0; i < STATES[state].runs[ctx.quick ? 1 : 0]!; i++) {
          await prepare(db, state);
          result.tether.push(await timed(() => tetherSweep(db)));
          result.baseline.push(await timed(() => baselineSweep(db)));
        }
        const list = (runs: Timing[]): string =>
          runs.map((t) => `${ms(t.ms)} ms/${t.transitions}`).join(', ');
        ctx.log(`  ${state}: tether ${list(result.tether)}; baseline ${list(result.baseline)}`);
        cases.push(result);
      }
    } finally {
      await db.close();
      await ctx.postgres.drop(DATABASE);
    }

    const tether = (s: FleetState): Timing[] => cases.find((c) => c.state === s)?.tether ?? [];
    const [onePct, mass] = [tether('one-percent'), tether('all-stale')];
    const massTransitions = mass[0]?.transitions ?? 0;
    const repeats = Object.fromEntries(
      Object.entries(STATES).map(([s, d]) => [s, d.runs[ctx.quick ? 1 : 0]]),
    );
    return {
      parameters: {
        rows,
        repeats,
        degradedAfterMs: DEGRADED_AFTER_MS,
        offlineAfterMs: OFFLINE_AFTER_MS,
      },
      tables: [
        table(
          ['fleet state', 'server'],
          SWEEP,
          cases.flatMap((c) =>
            compareRows(SWEEP, stepLead(STATES[c.state].label), c.tether, c.baseline),
          ),
        ),
      ],
      notes: [],
      floors: [
        {
          floor: `sweep over ${num(rows)} rows, 1 % stale: ≤ 50 ms`,
          measured: `median ${ms(median(times(onePct)))} ms, worst ${ms(worst(onePct))} ms of ${onePct.length}`,
          met: worst(onePct) <= 50,
        },
        {
          floor: `mass demotion of ${num(rows)} with its events: ≤ 2 s`,
          measured: `median ${ms(median(times(mass)))} ms, worst ${ms(worst(mass))} ms (${num(massTransitions)} transitions + events)`,
          met: worst(mass) <= 2_000 && massTransitions === rows,
        },
      ],
      scaled: `--quick: ${num(rows)} rows`,
      data: cases,
    };
  },
};
