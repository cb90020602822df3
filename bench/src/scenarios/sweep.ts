/**
 * The staleness sweep over a large registry, timed directly against PostgreSQL in its own database
 * (so the running server's sweep loop cannot touch it): the control plane's `sweepPresence` inside
 * a transaction holding the sweep's advisory lock, exactly as the server runs it, from the client's
 * clock (BEGIN to COMMIT acknowledged).
 */
import { BASELINE_SCHEMA, BASELINE_TABLE } from '../baseline/schema.js';
import { createFleet } from '../identities.js';
import { preciseNow } from '../ipc.js';
import { compareRows, metric, ms, num, stepLead, type Column } from '../report.js';
import { scaledFloors, type Scenario, type ScenarioResult } from '../scenario.js';
import { createDb, runMigrations, sweepPresence, type Db } from '../tether-internals.js';

const DATABASE = 'tether_bench_sweep';
const DEGRADED_AFTER_MS = 30_000;
const OFFLINE_AFTER_MS = 60_000;
const SWEEP_LOCK_KEY = 'tether.presence_sweep';

type FleetState = 'fresh' | 'one-percent' | 'all-stale';

/** Last-beat age (seconds) per node: `i` is the node's number. */
const AGE_SQL: Record<FleetState, string> = {
  fresh: '0',
  'one-percent': `CASE WHEN i % 200 = 0 THEN 90 WHEN i % 200 = 100 THEN 45 ELSE 0 END`,
  'all-stale': '120',
};

async function prepare(db: Db, state: FleetState): Promise<void> {
  const age = AGE_SQL[state];
  await db.query(
    `UPDATE runtime_node_presence p
        SET health_state = 'online', online_since = now() - interval '1 hour',
            changed_at = now() - interval '1 hour', last_heartbeat_at = now() - make_interval(secs => ${age})
       FROM (SELECT node_id, right(node_id, 6)::int AS i FROM runtime_node_presence) n
      WHERE p.node_id = n.node_id`,
  );
  await db.query(
    `UPDATE ${BASELINE_TABLE} p
        SET health_state = 'online', last_heartbeat_at = now() - make_interval(secs => ${age})
       FROM (SELECT node_id, right(node_id, 6)::int AS i FROM ${BASELINE_TABLE}) n
      WHERE p.node_id = n.node_id`,
  );
  await db.query(`VACUUM (ANALYZE) runtime_node_presence, ${BASELINE_TABLE}, fleet_events`);
}

interface Timing {
  ms: number;
  transitions: number;
}

async function tetherSweep(db: Db): Promise<Timing> {
  const started = preciseNow();
  const transitions = await db.tx(async (sql) => {
    const { rows } = await sql.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked`,
      [SWEEP_LOCK_KEY],
    );
    if (!rows[0]?.locked) throw new Error('sweep lock held elsewhere');
    return sweepPresence(sql, {
      degradedAfterMs: DEGRADED_AFTER_MS,
      offlineAfterMs: OFFLINE_AFTER_MS,
    });
  });
  return { ms: preciseNow() - started, transitions: transitions.length };
}

async function baselineSweep(db: Db): Promise<Timing> {
  const started = preciseNow();
  const { rowCount } = await db.query(
    `UPDATE ${BASELINE_TABLE}
        SET health_state = CASE WHEN last_heartbeat_at < now() - interval '${OFFLINE_AFTER_MS} milliseconds'
                                THEN 'offline' ELSE 'degraded' END
      WHERE health_state <> 'offline'
        AND last_heartbeat_at < now() - interval '${DEGRADED_AFTER_MS} milliseconds'
        AND health_state <> CASE WHEN last_heartbeat_at < now() - interval '${OFFLINE_AFTER_MS} milliseconds'
                                 THEN 'offline' ELSE 'degraded' END`,
  );
  return { ms: preciseNow() - started, transitions: rowCount };
}

interface CaseResult {
  state: FleetState;
  tether: Timing[];
  baseline: Timing[];
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
};
const worst = (values: number[]): number => Math.max(...values);

const times = (runs: Timing[]): number[] => runs.map((x) => x.ms);
const SWEEP: Column<Timing[]>[] = [
  metric('transitions', num, (runs) => runs[0]?.transitions, false),
  metric('median ms', ms, (runs) => median(times(runs))),
  metric('worst ms', ms, (runs) => worst(times(runs))),
  metric('runs', num, (runs) => runs.length, false),
];

export const sweep: Scenario = {
  name: 'sweep',
  title: 'Staleness sweep over the registry, timed against PostgreSQL',
  needs: () => ({ nodes: 0 }),
  async run(ctx): Promise<ScenarioResult> {
    const rows = ctx.quick ? 20_000 : 100_000;
    const repeats: Record<FleetState, number> = ctx.quick
      ? { fresh: 2, 'one-percent': 2, 'all-stale': 1 }
      : { fresh: 5, 'one-percent': 5, 'all-stale': 3 };
    await ctx.postgres.recreate(DATABASE);
    const url = ctx.postgres.urlFor(DATABASE);
    await runMigrations(url);
    const db = createDb({ connectionString: url, max: 2, applicationName: 'tether-bench-sweep' });
    const cases: CaseResult[] = [];
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
      for (const state of ['fresh', 'one-percent', 'all-stale'] as const) {
        const result: CaseResult = { state, tether: [], baseline: [] };
        for (let i = 0; i < repeats[state]; i++) {
          await prepare(db, state);
          result.tether.push(await tetherSweep(db));
          result.baseline.push(await baselineSweep(db));
        }
        ctx.log(
          `  ${state}: tether ${result.tether.map((t) => `${ms(t.ms)} ms/${t.transitions}`).join(', ')}; ` +
            `baseline ${result.baseline.map((t) => `${ms(t.ms)} ms/${t.transitions}`).join(', ')}`,
        );
        cases.push(result);
      }
    } finally {
      await db.close();
      await ctx.postgres.drop(DATABASE);
    }

    const label: Record<FleetState, string> = {
      fresh: 'all fresh (0 %)',
      'one-percent': '1 % stale',
      'all-stale': 'mass demotion (100 %)',
    };
    const tableRows = cases.flatMap((c) =>
      compareRows(SWEEP, stepLead(label[c.state]), c.tether, c.baseline),
    );
    const scaled = ctx.quick ? `--quick: ${num(rows)} rows` : undefined;
    const byState = (s: FleetState): number[] =>
      cases.find((c) => c.state === s)?.tether.map((x) => x.ms) ?? [];
    const onePct = byState('one-percent');
    const mass = byState('all-stale');
    const massTransitions = cases.find((c) => c.state === 'all-stale')?.tether[0]?.transitions ?? 0;
    const floors = scaledFloors(
      [
        {
          floor: `sweep over ${num(rows)} rows, 1 % stale: ≤ 50 ms`,
          measured: `median ${ms(median(onePct))} ms, worst ${ms(worst(onePct))} ms of ${onePct.length}`,
          met: worst(onePct) <= 50,
        },
        {
          floor: `mass demotion of ${num(rows)} with its events: ≤ 2 s`,
          measured: `median ${ms(median(mass))} ms, worst ${ms(worst(mass))} ms (${num(massTransitions)} transitions + events)`,
          met: worst(mass) <= 2_000 && massTransitions === rows,
        },
      ],
      scaled,
    );
    return {
      name: this.name,
      title: this.title,
      parameters: {
        rows,
        repeats,
        degradedAfterMs: DEGRADED_AFTER_MS,
        offlineAfterMs: OFFLINE_AFTER_MS,
      },
      tables: [
        {
          headers: ['fleet state', 'server', ...SWEEP.map((c) => c.header)],
          rows: tableRows,
        },
      ],
      notes: [],
      floors,
      data: cases,
    };
  },
};
