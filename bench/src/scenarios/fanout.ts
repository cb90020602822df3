/** Event fan-out: presence change → dashboards (docs/performance.md, "Presence latency"). */
import { preciseNow, sleep } from '../ipc.js';
import {
  attempt,
  createWatchedFleet,
  presenceRun,
  quantiles,
  summariseDriver,
  type WatchedFleet,
} from '../presence.js';
import { sampleUsage } from '../proc.js';
import { compareRows, mb, metric, ms, num, stepLead, table, type Column } from '../report.js';
import { lines, TARGETS, withServer, type BenchContext, type Scenario } from '../scenario.js';
import type { ServerExit, ServerProcess, Target } from '../servers.js';

/**
 * The same 10 changes/s to every dashboard count (1 000 dashboards: 10 000 deliveries/s); 100
 * nodes, so each beats every 10 s, well inside the sweep's 30 s (no sweep transitions mix in).
 */
const FULL = { nodes: 100, changes: 1_000, rate: 10, subscribers: [100, 1_000], settleMs: 15_000 };
type Shape = typeof FULL;
const QUICK: Shape = { nodes: 60, changes: 120, rate: 10, subscribers: [100], settleMs: 5_000 };
/** The floor: p99 delivery latency per dashboard count. */
const P99_FLOOR_MS: Record<number, number> = { 100: 100, 1_000: 250 };
const POLL_INTERVAL_MS = 1_000;
/** The server column: Tether's label, the baseline's. */
const SERVER = {
  tether: 'tether (feed)',
  baseline: `baseline (poll ${POLL_INTERVAL_MS / 1000} s)`,
};

type FanoutRun = Awaited<ReturnType<typeof measure>> & { serverExit: ServerExit };

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

function measure(
  ctx: BenchContext,
  server: ServerProcess,
  target: Target,
  subscribers: number,
  shape: Shape,
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
    const { opened: dashboardsOpen, failures: dashboardFailures } = dashboards;
    return {
      ...{ target, subscribers, dashboardsOpen, dashboardFailures, readyMs, settledMs },
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
  // The clients are the dashboard processes, then the driver (see measure()).
  metric('dash CPU %', num, (r) => Math.max(...r.usage.clientsCpuPercent.slice(0, -1)), false),
  metric('others CPU %', num, (r) => r.usage.othersCpuPercent, false),
];

function runNotes(r: FanoutRun): string[] {
  const who = `${r.target}, ${num(r.subscribers)} dashboards`;
  const { driver, delivery, serverExit: exit } = r;
  const made = driver.made.all;
  return lines(
    exit.crashed && `${who}: the server crashed (exit code ${exit.code}, signal ${exit.signal})`,
    r.dashboardsOpen < r.subscribers &&
      `${who}: only ${num(r.dashboardsOpen)} dashboards subscribed (${r.dashboardFailures.slice(0, 2).join('; ')})`,
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
function floorsOf(runs: FanoutRun[], shape: Shape) {
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
    const shape = ctx.quick ? QUICK : FULL;
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
            measure(ctx, server, target, subscribers, shape, fleet),
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
      ...runs.flatMap(runNotes),
    );
    return {
      parameters: { ...shape, pollIntervalMs: POLL_INTERVAL_MS },
      tables: [table(['dashboards', 'server'], FANOUT, rows)],
      notes,
      floors: floorsOf(runs, shape),
      scaled: `--quick: ${num(shape.changes)} changes at ${num(shape.rate)}/s`,
      data: runs,
    };
  },
};
