/** WS close → offline under ingest load (docs/performance.md, "Presence latency"). */
import { failedOf, runLoad, type Step } from '../load.js';
import {
  attempt,
  createWatchedFleet,
  presenceRun,
  quantiles,
  summariseDriver,
  type WatchedFleet,
} from '../presence.js';
import { mb, metric, ms, num, table, type Column } from '../report.js';
import type { DriverReport } from '../roles/presence-driver.js';
import {
  lines,
  withServer,
  type BenchContext,
  type FloorCheck,
  type Scenario,
} from '../scenario.js';
import type { ServerExit, ServerProcess } from '../servers.js';

/** 2 000 beats/s in the background: the closes meet a loaded, not a drowning, server. */
const FULL = {
  background: 2_000,
  step: { cadenceMs: 1_000, payload: 'plain', warmupMs: 5_000, measureMs: 40_000 } satisfies Step,
  closes: 300,
  holdMs: 3_000,
};
type Shape = typeof FULL;
const QUICK: Shape = {
  background: 500,
  step: { cadenceMs: 500, payload: 'plain', warmupMs: 1_500, measureMs: 8_000 },
  closes: 40,
  holdMs: 1_500,
};

const FLOOR_MS = 1_000;
/** The first close comes this long into the window, the last this long before its end. */
const LEAD_IN_MS = 1_000;
const LEAD_OUT_MS = 2_000;

type CloseRun = Awaited<ReturnType<typeof measure>> & { serverExit: ServerExit };

const backgroundRate = (shape: Shape): number => (shape.background * 1000) / shape.step.cadenceMs;

function measure(ctx: BenchContext, server: ServerProcess, shape: Shape, fleet: WatchedFleet) {
  // Opens at a steady rate so that the closes, holdMs later, span the window.
  const span = shape.step.measureMs - LEAD_IN_MS - LEAD_OUT_MS;
  const rate = ((shape.closes - 1) * 1000) / span;
  const drive = { mode: 'churn', changes: shape.closes, rate, holdMs: shape.holdMs } as const;
  // Fresh identities, never connected: offline.
  const watch = { processes: 2, mode: 'feed', dashboards: 2, initial: 'offline' } as const;
  return presenceRun(server.baseUrl, fleet, drive, watch, async (churn, _opened, dashboards) => {
    // Started from inside runLoad, once the step's window is known; awaited after it.
    const schedule = { startAt: 0, run: null as Promise<DriverReport> | null };
    const background = await runLoad(ctx, server, {
      transport: 'ws',
      nodes: ctx.fleet.nodes.slice(0, shape.background),
      steps: [shape.step],
      onStep: (windowStart) => {
        schedule.startAt = windowStart + LEAD_IN_MS - shape.holdMs;
        schedule.run = churn.call('run', schedule.startAt);
        schedule.run.catch(() => undefined); // handled when awaited below, not a crash
      },
    });
    if (!schedule.run) throw new Error('the load step never started');
    const report = await schedule.run;
    const settledMs = await dashboards.waitFor(report.final, 10_000);
    const delivery = await dashboards.match(report.changes, schedule.startAt, 'every');
    const driver = summariseDriver(report);
    ctx.log(
      `  ${driver.made.offline} closes: offline seen p99 ${ms(delivery.latency.offline.p99Ms)} ms, ` +
        `${delivery.received}/${delivery.expected} changes seen`,
    );
    return { background: background.steps[0]!, driver, delivery, settledMs };
  });
}

/** Dashboards × successful closes, and how many of those offline deliveries arrived. */
function offlineCounts(r: CloseRun): { closes: number; expected: number; seen: number } {
  const closes = r.driver.made.offline;
  return {
    closes,
    expected: closes * r.delivery.dashboards,
    seen: r.delivery.latency.offline.count,
  };
}

const COLUMNS: Column<CloseRun>[] = [
  metric('background offered/s', num, (r) => r.background.offeredRate),
  metric('achieved/s', num, (r) => r.background.achievedRate),
  metric('beat p99 ms', ms, (r) => r.background.latency.p99Ms),
  metric('closes', num, (r) => offlineCounts(r).closes),
  {
    header: 'offline seen',
    cell: (r) => `${num(offlineCounts(r).seen)}/${num(offlineCounts(r).expected)}`,
  },
  ...quantiles((r: CloseRun) => r.delivery.latency.offline),
  metric('close→at p99 ms', ms, (r) => r.delivery.toEventAt.offline.p99Ms),
  metric('open→online p99 ms', ms, (r) => r.delivery.latency.online.p99Ms),
  metric('srv CPU %', num, (r) => r.background.server?.cpuPercent),
  metric('srv RSS MB', mb, (r) => r.background.server?.rssMaxBytes),
  metric('loop p99 ms', ms, (r) => r.background.loopLag?.p99Ms),
  metric('PG CPU %', num, (r) => r.background.postgresCpuPercent),
  metric('others CPU %', num, (r) => r.background.othersCpuPercent),
];

function notesOf(r: CloseRun | null, shape: Shape): string[] {
  const notes = [
    `background: ${num(shape.background)} WebSocket nodes at ${num(backgroundRate(shape))} beats/s ` +
      `(open loop); ${num(shape.closes)} other nodes each connect, stay ${num(shape.holdMs / 1000, 1)} s, ` +
      `and close, spread over the ${num(shape.step.measureMs / 1000)} s window; 2 dashboards subscribed to fleet.events`,
    `latency = a dashboard has presence.changed → offline (cause connection) − the driver called close(); ` +
      `close→at = until the event's database timestamp (the releasing transaction's start)`,
    'baseline: n/a — it binds no connection, so a closed node stays online until a staleness sweep ' +
      '(60 s of silence, and its server runs none); nothing to compare',
  ];
  if (!r) return notes;
  const { driver, delivery } = r;
  return lines(
    ...notes,
    r.serverExit.crashed && `tether server crashed (exit code ${r.serverExit.code})`,
    driver.failed > 0 &&
      `driver: ${driver.failed} opens/closes failed, e.g. ${driver.failures.slice(0, 2).join('; ')}`,
    r.settledMs === null && 'not every dashboard showed every closed node offline within 10 s',
    delivery.unexpected > 0 &&
      `${num(delivery.unexpected)} observations matched no open/close (e.g. a sweep)`,
    delivery.errorCount > 0 &&
      `${delivery.errorCount} dashboard errors, e.g. ${delivery.errors.slice(0, 2).join('; ')}`,
    failedOf(r.background) > 0 &&
      `background: ${num(failedOf(r.background))} beats failed in the window`,
    driver.lagMaxMs > 100 && `the driver ran up to ${ms(driver.lagMaxMs)} ms behind its schedule`,
    `driver: open → first beat acknowledged p99 ${ms(driver.actionLatency.online.p99Ms)} ms`,
  );
}

/** Counts only if the background load was sustained (≥ 99 %, nothing failed), every close seen. */
function floorOf(r: CloseRun | null, shape: Shape): FloorCheck {
  const rate = num(backgroundRate(shape));
  if (!r)
    return {
      floor: `WS close → offline under ${rate} beats/s: p99 ≤ 1 s`,
      measured: 'run failed',
      met: false,
    };
  const off = r.delivery.latency.offline;
  const { seen, expected } = offlineCounts(r);
  const s = r.background;
  const loaded = s.achievedRate >= s.offeredRate * 0.99 && failedOf(s) === 0;
  return {
    floor: `WS close → offline under ${rate} WS beats/s: p99 ≤ 1 s, every close seen`,
    measured:
      `p99 ${ms(off.p99Ms)} ms (p50 ${ms(off.p50Ms)}, max ${ms(off.maxMs)}); ${num(seen)} of ` +
      `${num(expected)} seen; background ${num(s.achievedRate)}/s of ${num(s.offeredRate)}/s`,
    met: expected > 0 && seen === expected && off.p99Ms <= FLOOR_MS && loaded,
  };
}

export const closeOffline: Scenario = {
  name: 'close-offline',
  title: 'WebSocket close → offline seen on fleet.events, under WebSocket ingest load',
  needs: (quick) => ({ nodes: (quick ? QUICK : FULL).background }),
  async run(ctx) {
    const shape = ctx.quick ? QUICK : FULL;
    const notes: string[] = [];
    const run = await attempt(ctx, 'close-offline', '', notes, async () => {
      const fleet = await createWatchedFleet(ctx.db, 'closeoff', shape.closes);
      return withServer(ctx, 'tether', 'close-offline', (server) =>
        measure(ctx, server, shape, fleet),
      );
    });
    const rows = run ? [['tether', ...COLUMNS.map((c) => c.cell(run))]] : [];
    rows.push(['baseline', ...COLUMNS.map(() => 'n/a')]);
    return {
      parameters: { ...shape, backgroundRate: backgroundRate(shape) },
      tables: [table(['server'], COLUMNS, rows)],
      notes: [...notes, ...notesOf(run, shape)],
      floors: [floorOf(run, shape)],
      scaled: `--quick: ${num(shape.closes)} closes under ${num(backgroundRate(shape))}/s`,
      data: run,
    };
  },
};
