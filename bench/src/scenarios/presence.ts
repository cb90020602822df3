/**
 * The presence scenarios (docs/performance.md, "Presence latency"): event fan-out (presence change
 * → dashboards) and WS close → offline under ingest load. What they share: fresh nodes and a
 * dashboard token, the driver and dashboard processes, the driver's log summed up, a run's
 * failure, latency columns.
 */
import { byHealth, type Health } from '../delivery.js';
import { Histogram, type LatencySummary } from '../histogram.js';
import { createFleet } from '../identities.js';
import { Child, children, exitAll, message, preciseNow, sleep, sum, waitFor } from '../ipc.js';
import { failedOf, runLoad, type Step } from '../load.js';
import { sampleUsage } from '../proc.js';
import { compareRows, mb, metric, ms, num, stepLead, table, type Column } from '../report.js';
import type { DashboardSpec, handlers as dashboardHandlers } from '../roles/dashboards.js';
import type {
  DriverReport,
  DriverSpec,
  handlers as driverHandlers,
} from '../roles/presence-driver.js';
import {
  lines,
  TARGETS,
  withServer,
  type BenchContext,
  type FloorCheck,
  type Scenario,
} from '../scenario.js';
import type { ServerExit, ServerProcess, Target } from '../servers.js';
import { issueParticipantToken, type Db } from '../tether-internals.js';

type WatchedFleet = Awaited<ReturnType<typeof createWatchedFleet>>;
type Driver = Child<typeof driverHandlers>;
type Dashboard = Child<typeof dashboardHandlers>;

/** Fresh nodes (offline, every change is the driver's) and a token of their owner (`member`). */
async function createWatchedFleet(db: Db, prefix: string, count: number) {
  const { nodes, ownerParticipantId } = await createFleet(db, prefix, count);
  const { token } = await issueParticipantToken(db, ownerParticipantId, `${prefix} dashboards`);
  return { nodes, nodeIds: nodes.map((n) => n.nodeId), token };
}

/** What a presence run's body is given of the dashboards: counts, and their answers merged. */
function dashboardsOf(
  list: Dashboard[],
  ready: { opened: number; failures: string[]; deferred?: number }[],
) {
  const opened = sum(ready.map((r) => r.opened));
  return {
    opened,
    failures: ready.flatMap((r) => r.failures),
    deferred: sum(ready.map((r) => r.deferred ?? 0)),
    pids: list.map((c) => c.pid),
    /** Waits until every open dashboard shows `expect`; how long that took, or null. */
    async waitFor(expect: Health[], timeoutMs: number): Promise<number | null> {
      const started = preciseNow();
      const caughtUp = async () =>
        sum(await Promise.all(list.map((c) => c.call('probe', expect)))) >= opened;
      return (await waitFor(caughtUp, Date.now() + timeoutMs, 50)) ? preciseNow() - started : null;
    },
    /** Every dashboard's deliveries (delivery.ts), merged. */
    async match(...args: Parameters<typeof dashboardHandlers.match>) {
      const parts = await Promise.all(list.map((c) => c.call('match', ...args)));
      const total = (k: 'dashboards' | 'expected' | 'received' | 'unexpected' | 'errorCount') =>
        sum(parts.map((s) => s[k]));
      const merge = (key: 'latency' | 'fromEventAt' | 'toEventAt') =>
        byHealth((k) => Histogram.from(parts.map((s) => s[key][k])).summary());
      return {
        dashboards: total('dashboards'),
        expected: total('expected'),
        received: total('received'),
        lost: total('expected') - total('received'),
        unexpected: total('unexpected'),
        latency: merge('latency'),
        fromEventAt: merge('fromEventAt'),
        toEventAt: merge('toEventAt'),
        errors: parts.flatMap((s) => s.errors).slice(0, 5),
        errorCount: total('errorCount'),
      };
    },
  };
}

/**
 * One presence run against `baseUrl`: the driver (in flip mode its nodes connect first, so the
 * dashboards subscribe at the live edge), then `watch.dashboards` split over `processes` (≥ 2)
 * dashboard children; all exit after `body`.
 */
async function presenceRun<T>(
  baseUrl: string,
  fleet: WatchedFleet,
  drive: Pick<DriverSpec, 'mode' | 'changes' | 'rate' | 'holdMs'>,
  {
    processes,
    ...watch
  }: Omit<DashboardSpec, 'baseUrl' | 'token' | 'nodeIds'> & { processes: number },
  body: (driver: Driver, opened: number, dashboards: ReturnType<typeof dashboardsOf>) => Promise<T>,
): Promise<T> {
  const driver: Driver = new Child('presence-driver');
  const count = Math.max(2, processes);
  let list: Dashboard[] = [];
  try {
    const spec = { ...drive, baseUrl, nodes: fleet.nodes, requestTimeoutMs: 10_000 };
    const { opened } = await driver.call('init', spec);
    list = children('dashboards', count);
    const ready = await Promise.all(
      list.map((child, i) => {
        const share = Math.floor(watch.dashboards / count) + (i < watch.dashboards % count ? 1 : 0);
        const { token, nodeIds } = fleet;
        return child.call('init', { ...watch, baseUrl, token, nodeIds, dashboards: share });
      }),
    );
    return await body(driver, opened, dashboardsOf(list, ready));
  } finally {
    await driver.exit();
    await exitAll(list);
  }
}

/** The driver's log, summed up for the report and the results file (the log itself is long). */
function summariseDriver(report: DriverReport) {
  const made = byHealth(() => 0);
  const latency = byHealth(() => new Histogram());
  for (const c of report.changes) {
    if (!c.ok) continue;
    for (const key of ['all', c.health] as const) {
      made[key]++;
      if (c.ackMs !== null) latency[key].recordMs(c.ackMs);
    }
  }
  return {
    made,
    failed: report.changes.filter((c) => !c.ok).length,
    skipped: report.skipped,
    failures: report.failures,
    lagMaxMs: report.lagMaxMs,
    actionLatency: byHealth((k) => latency[k].summary()),
  };
}

/** `run()`, or null once its failure is logged (`<label> failed`) and noted (`<who>run failed`). */
async function attempt<T>(
  ctx: BenchContext,
  label: string,
  who: string,
  notes: string[],
  run: () => Promise<T>,
): Promise<T | null> {
  try {
    return await run();
  } catch (error) {
    ctx.log(`  ${label} failed: ${message(error)}`);
    notes.push(`${who}run failed: ${message(error)}`);
    return null;
  }
}

/** The p50, p95, p99 and max columns of a latency. */
const quantiles = <R>(pick: (r: R) => LatencySummary): Column<R>[] =>
  (['p50', 'p95', 'p99', 'max'] as const).map((q) =>
    metric(`${q} ms`, ms, (r) => pick(r)[`${q}Ms`]),
  );

// Event fan-out: presence change → dashboards.

/**
 * The same 10 changes/s to every dashboard count (1 000 dashboards: 10 000 deliveries/s); 100
 * nodes, so each beats every 10 s, well inside the sweep's 30 s (no sweep transitions mix in).
 */
const FAN = { nodes: 100, changes: 1_000, rate: 10, subscribers: [100, 1_000], settleMs: 15_000 };
type Fanout = typeof FAN;
const FAN_QUICK: Fanout = {
  nodes: 60,
  changes: 120,
  rate: 10,
  subscribers: [100],
  settleMs: 5_000,
};
/** The floor: p99 delivery latency per dashboard count. */
const P99_FLOOR_MS: Record<number, number> = { 100: 100, 1_000: 250 };
const POLL_INTERVAL_MS = 1_000;
/** The server column: Tether's label, the baseline's. */
const SERVER = {
  tether: 'tether (feed)',
  baseline: `baseline (poll ${POLL_INTERVAL_MS / 1000} s)`,
};

type FanoutRun = Awaited<ReturnType<typeof measureFanout>> & { serverExit: ServerExit };

/** The nodes' heartbeat transitions in the feed since `since` (epoch ms, the machine's clock). */
async function feedEventCount(ctx: BenchContext, nodeIds: string[], since: number) {
  const { rows } = await ctx.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM fleet_events
      WHERE type = 'presence.changed' AND node_id = ANY($1) AND payload->>'cause' = 'heartbeat'
        AND at >= to_timestamp($2::float8 / 1000)`,
    [nodeIds, since],
  );
  return rows[0]!.n;
}

function measureFanout(
  ctx: BenchContext,
  server: ServerProcess,
  target: Target,
  subscribers: number,
  shape: Fanout,
  fleet: WatchedFleet,
) {
  ctx.log(`  ${subscribers} dashboards`);
  const tether = target === 'tether';
  const drive = { mode: 'flip', changes: shape.changes, rate: shape.rate, holdMs: 0 } as const;
  const watch = {
    processes: ctx.generators,
    mode: tether ? ('feed' as const) : ('poll' as const),
    dashboards: subscribers,
    initial: tether ? ('online' as const) : null,
    pollIntervalMs: POLL_INTERVAL_MS,
  };
  return presenceRun(server.baseUrl, fleet, drive, watch, async (driver, opened, dashboards) => {
    // Pollers learn the state from their first polls; subscriptions are registered with the
    // feed just after tRPC confirms them.
    const readyMs = await dashboards.waitFor(
      fleet.nodes.map(() => 'online' as const),
      30_000,
    );
    await sleep(500);
    const ready =
      readyMs === null ? 'NOT all dashboards show the nodes online' : `ready in ${ms(readyMs)} ms`;
    ctx.log(
      `  ${opened}/${fleet.nodes.length} nodes, ${dashboards.opened}/${subscribers} dashboards; ${ready}`,
    );
    await server.loopLag(); // resets the server's delay histogram
    const sampler = await sampleUsage({
      server: server.pid,
      postmaster: ctx.postmasterPid,
      clients: [...dashboards.pids, driver.pid],
    });
    const startAt = preciseNow() + 200;
    const report = await driver.call('run', startAt);
    const settledMs = await dashboards.waitFor(report.final, shape.settleMs);
    const usage = await sampler.stop();
    const loopLag = await server.loopLag();
    const delivery = await dashboards.match(report.changes, startAt, tether ? 'every' : 'latest');
    const feedEvents = tether ? await feedEventCount(ctx, fleet.nodeIds, startAt) : null;
    const driverSummary = summariseDriver(report);
    ctx.log(
      `  ${driverSummary.made.all} changes: received ${delivery.received}/${delivery.expected}, ` +
        `p99 ${ms(delivery.latency.all.p99Ms)} ms, max ${ms(delivery.latency.all.maxMs)} ms`,
    );
    const { opened: dashboardsOpen, failures: dashboardFailures, deferred } = dashboards;
    return {
      ...{ target, subscribers, dashboardsOpen, dashboardFailures, readyMs, settledMs },
      dashboardsDeferred: deferred,
      ...{ driver: driverSummary, delivery, usage, loopLag, feedEvents },
    };
  });
}

/** Server CPU time over the window per change delivered to a dashboard (µs). */
function cpuPerDeliveryUs(r: FanoutRun): number | null {
  const cpu = r.usage.server?.cpuPercent;
  if (cpu === undefined || r.delivery.received === 0) return null;
  return ((cpu / 100) * r.usage.seconds * 1e6) / r.delivery.received;
}

const FANOUT: Column<FanoutRun>[] = [
  metric('changes', num, (r) => r.driver.made.all, false),
  metric('expected', num, (r) => r.delivery.expected, false),
  metric('received', num, (r) => r.delivery.received, false),
  metric('not seen', num, (r) => r.delivery.lost, false),
  ...quantiles((r: FanoutRun) => r.delivery.latency.all),
  metric('at→dash p99 ms', ms, (r) => r.delivery.fromEventAt.all.p99Ms, false),
  metric('beat p99 ms', ms, (r) => r.driver.actionLatency.all.p99Ms),
  metric('srv CPU %', num, (r) => r.usage.server?.cpuPercent),
  metric('srv µs/delivery', num, cpuPerDeliveryUs),
  metric('srv RSS MB', mb, (r) => r.usage.server?.rssMaxBytes),
  metric('loop p99 ms', ms, (r) => r.loopLag?.p99Ms),
  metric('PG CPU %', num, (r) => r.usage.postgresCpuPercent),
  // The clients are the dashboard processes, then the driver (see measureFanout()).
  metric('dash CPU %', num, (r) => Math.max(...r.usage.clientsCpuPercent.slice(0, -1)), false),
  metric('others CPU %', num, (r) => r.usage.othersCpuPercent, false),
];

function fanoutNotes(r: FanoutRun): string[] {
  const who = `${r.target}, ${num(r.subscribers)} dashboards`;
  const { driver, delivery, serverExit: exit } = r;
  const made = driver.made.all;
  return lines(
    exit.crashed && `${who}: the server crashed (exit code ${exit.code}, signal ${exit.signal})`,
    r.dashboardsOpen < r.subscribers &&
      `${who}: only ${num(r.dashboardsOpen)} dashboards subscribed (${r.dashboardFailures.slice(0, 2).join('; ')})`,
    r.dashboardsDeferred > 0 &&
      `${who}: ${num(r.dashboardsDeferred)} dashboard upgrades deferred by admission, opened again when told (retryAfterMs)`,
    r.readyMs === null && `${who}: not every dashboard showed the nodes online within 30 s`,
    r.settledMs === null &&
      `${who}: not every dashboard showed the final state within the settle time`,
    (driver.failed > 0 || driver.skipped > 0) &&
      `${who}: driver: ${driver.failed} beats failed, ${driver.skipped} turns skipped (node's previous beat unanswered); ` +
        driver.failures.slice(0, 2).join('; '),
    delivery.unexpected > 0 &&
      `${who}: ${num(delivery.unexpected)} observations matched no change of the driver`,
    delivery.errorCount > 0 &&
      `${who}: ${delivery.errorCount} dashboard errors, e.g. ${delivery.errors.slice(0, 2).join('; ')}`,
    r.feedEvents !== null &&
      r.feedEvents !== made &&
      `${who}: the feed holds ${num(r.feedEvents)} heartbeat transitions of the nodes, the driver made ${num(made)}`,
    driver.lagMaxMs > 100 &&
      `${who}: the driver ran up to ${ms(driver.lagMaxMs)} ms behind its schedule`,
  );
}

/** Refused or timed-out changes are not lost deliveries, but the floor needs every one made. */
function fanoutFloors(runs: FanoutRun[], shape: Fanout) {
  return shape.subscribers.map((subscribers) => {
    const limit = P99_FLOOR_MS[subscribers] ?? 250;
    const floor = `fan-out to ${num(subscribers)} dashboards: p99 ≤ ${limit} ms, nothing lost`;
    const r = runs.find((x) => x.target === 'tether' && x.subscribers === subscribers);
    if (!r) return { floor, measured: 'run failed', met: false };
    const { latency, received, expected, lost } = r.delivery;
    const made = r.driver.made.all;
    return {
      floor,
      measured:
        `p99 ${ms(latency.all.p99Ms)} ms (p50 ${ms(latency.all.p50Ms)}, max ${ms(latency.all.maxMs)}); ` +
        `${num(received)} of ${num(expected)} deliveries; ${num(made)} of ${num(shape.changes)} changes made`,
      met: latency.all.p99Ms <= limit && lost === 0 && made === shape.changes,
    };
  });
}

export const fanout: Scenario = {
  name: 'fanout',
  title: 'Presence change → dashboards: fleet.events fan-out (baseline: polling every second)',
  needs: () => ({ nodes: 0 }), // registers its own nodes, untouched by other scenarios
  async run(ctx) {
    const shape = ctx.quick ? FAN_QUICK : FAN;
    const runs: FanoutRun[] = [];
    const notes: string[] = [];
    const rows: string[][] = [];
    for (const subscribers of shape.subscribers) {
      const fleet = await createWatchedFleet(ctx.db, `fanout${subscribers}`, shape.nodes);
      const pair: (FanoutRun | null)[] = [];
      for (const target of TARGETS) {
        const who = `${target}, ${num(subscribers)} dashboards: `;
        const run = attempt(ctx, `${target}, ${subscribers} dashboards`, who, notes, () =>
          withServer(ctx, target, `fanout-${subscribers}`, (server) =>
            measureFanout(ctx, server, target, subscribers, shape, fleet),
          ),
        );
        pair.push(await run);
      }
      const [t, b] = pair;
      const label = num(subscribers);
      const one = t ?? b;
      if (t && b)
        rows.push(...compareRows(FANOUT, stepLead(label, SERVER.tether, SERVER.baseline), t, b));
      else if (one) rows.push([label, SERVER[one.target], ...FANOUT.map((c) => c.cell(one))]);
      runs.push(...pair.filter((r) => r !== null));
    }
    notes.push(
      `${num(shape.nodes)} nodes flip online ↔ degraded by WebSocket heartbeat, ${num(shape.changes)} changes at ${num(shape.rate)}/s ` +
        `per dashboard count; latency = dashboard has it − driver sent the beat (one machine clock); ` +
        `at→dash = the event's database timestamp (transaction start) → dashboard`,
      `baseline: no event feed — dashboards poll presence.list every ${POLL_INTERVAL_MS / 1000} s; ` +
        `"not seen" there counts flips that happened between two polls`,
      ...runs.flatMap(fanoutNotes),
    );
    return {
      parameters: { ...shape, pollIntervalMs: POLL_INTERVAL_MS },
      tables: [table(['dashboards', 'server'], FANOUT, rows)],
      notes,
      floors: fanoutFloors(runs, shape),
      scaled: `--quick: ${num(shape.changes)} changes at ${num(shape.rate)}/s`,
      data: runs,
    };
  },
};

// WS close → offline under ingest load.

/** 2 000 beats/s in the background: the closes meet a loaded, not a drowning, server. */
const CLOSE_FULL = {
  background: 2_000,
  step: { cadenceMs: 1_000, payload: 'plain', warmupMs: 5_000, measureMs: 40_000 } satisfies Step,
  closes: 300,
  holdMs: 3_000,
};
type Closes = typeof CLOSE_FULL;
const CLOSE_QUICK: Closes = {
  background: 500,
  step: { cadenceMs: 500, payload: 'plain', warmupMs: 1_500, measureMs: 8_000 },
  closes: 40,
  holdMs: 1_500,
};

const FLOOR_MS = 1_000;
/** The first close comes this long into the window, the last this long before its end. */
const LEAD_IN_MS = 1_000;
const LEAD_OUT_MS = 2_000;

type CloseRun = Awaited<ReturnType<typeof measureCloses>> & { serverExit: ServerExit };

const backgroundRate = (shape: Closes): number => (shape.background * 1000) / shape.step.cadenceMs;

function measureCloses(
  ctx: BenchContext,
  server: ServerProcess,
  shape: Closes,
  fleet: WatchedFleet,
) {
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

const CLOSES: Column<CloseRun>[] = [
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

function closeNotes(r: CloseRun | null, shape: Closes): string[] {
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
function closeFloor(r: CloseRun | null, shape: Closes): FloorCheck {
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
  needs: (quick) => ({ nodes: (quick ? CLOSE_QUICK : CLOSE_FULL).background }),
  async run(ctx) {
    const shape = ctx.quick ? CLOSE_QUICK : CLOSE_FULL;
    const notes: string[] = [];
    const run = await attempt(ctx, 'close-offline', '', notes, async () => {
      const fleet = await createWatchedFleet(ctx.db, 'closeoff', shape.closes);
      return withServer(ctx, 'tether', 'close-offline', (server) =>
        measureCloses(ctx, server, shape, fleet),
      );
    });
    const rows = run ? [['tether', ...CLOSES.map((c) => c.cell(run))]] : [];
    rows.push(['baseline', ...CLOSES.map(() => 'n/a')]);
    return {
      parameters: { ...shape, backgroundRate: backgroundRate(shape) },
      tables: [table(['server'], CLOSES, rows)],
      notes: [...notes, ...closeNotes(run, shape)],
      floors: [closeFloor(run, shape)],
      scaled: `--quick: ${num(shape.closes)} closes under ${num(backgroundRate(shape))}/s`,
      data: run,
    };
  },
};
