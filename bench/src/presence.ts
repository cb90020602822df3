/**
 * What the presence scenarios (fanout, close-offline; docs/performance.md) share: fresh nodes and a
 * dashboard token, the driver and dashboard processes, the driver's log summed up, a run's
 * failure, latency columns.
 */
import { byHealth, type Health } from './delivery.js';
import { Histogram, type LatencySummary } from './histogram.js';
import { createFleet } from './identities.js';
import { Child, children, exitAll, message, preciseNow, sum, waitFor } from './ipc.js';
import { metric, ms, type Column } from './report.js';
import type { DashboardSpec, handlers as dashboardHandlers } from './roles/dashboards.js';
import type {
  DriverReport,
  DriverSpec,
  handlers as driverHandlers,
} from './roles/presence-driver.js';
import type { BenchContext } from './scenario.js';
import { issueParticipantToken, type Db } from './tether-internals.js';

export type WatchedFleet = Awaited<ReturnType<typeof createWatchedFleet>>;
type Driver = Child<typeof driverHandlers>;
type Dashboard = Child<typeof dashboardHandlers>;

/** Fresh nodes (offline, every change is the driver's) and a token of their owner (`member`). */
export async function createWatchedFleet(db: Db, prefix: string, count: number) {
  const { nodes, ownerParticipantId } = await createFleet(db, prefix, count);
  const { token } = await issueParticipantToken(db, ownerParticipantId, `${prefix} dashboards`);
  return { nodes, nodeIds: nodes.map((n) => n.nodeId), token };
}

/** What a presence run's body is given of the dashboards: counts, and their answers merged. */
function dashboardsOf(list: Dashboard[], ready: { opened: number; failures: string[] }[]) {
  const opened = sum(ready.map((r) => r.opened));
  return {
    opened,
    failures: ready.flatMap((r) => r.failures),
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
export async function presenceRun<T>(
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
export function summariseDriver(report: DriverReport) {
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
export async function attempt<T>(
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
export const quantiles = <R>(pick: (r: R) => LatencySummary): Column<R>[] =>
  (['p50', 'p95', 'p99', 'max'] as const).map((q) =>
    metric(`${q} ms`, ms, (r) => pick(r)[`${q}Ms`]),
  );
