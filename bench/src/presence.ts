/**
 * What the presence-latency scenarios (fanout, close-offline) share: their own fresh nodes and
 * dashboard token, dashboard processes (dashboards split between them, every one tracking all the
 * nodes) and the presence driver's log summed up.
 */
import {
  byHealth,
  type ByHealth,
  type DeliverySummary,
  type Health,
  type MatchRule,
  type PresenceChange,
} from './delivery.js';
import { Histogram, type LatencySummary } from './histogram.js';
import { createFleet } from './identities.js';
import { Child, children, exitAll, preciseNow, sleep } from './ipc.js';
import type { DashboardSpec, handlers as dashboardHandlers } from './roles/dashboards.js';
import type {
  DriverReport,
  DriverSpec,
  handlers as driverHandlers,
} from './roles/presence-driver.js';
import { issueParticipantToken, type Db } from './tether-internals.js';
import type { NodeIdentity } from './wire.js';

export interface Delivery extends Omit<DeliverySummary, 'latency' | 'fromEventAt' | 'toEventAt'> {
  lost: number;
  latency: ByHealth<LatencySummary>;
  fromEventAt: ByHealth<LatencySummary>;
  toEventAt: ByHealth<LatencySummary>;
}

export interface WatchedFleet {
  nodes: NodeIdentity[];
  nodeIds: string[];
  /** A participant token of the nodes' owner (role `member`): it sees exactly these nodes. */
  token: string;
}

/**
 * Fresh nodes for a presence scenario (offline, never touched by another scenario, so every change
 * is the driver's) and a dashboard token of their owner, issued as `token.create` does.
 */
export async function createWatchedFleet(
  db: Db,
  prefix: string,
  count: number,
): Promise<WatchedFleet> {
  const fleet = await createFleet(db, prefix, count);
  const issued = await issueParticipantToken(db, fleet.ownerParticipantId, `${prefix} dashboards`);
  return { nodes: fleet.nodes, nodeIds: fleet.nodes.map((n) => n.nodeId), token: issued.token };
}

export class DashboardGroup {
  private constructor(
    readonly children: Child<typeof dashboardHandlers>[],
    readonly opened: number,
    readonly failures: string[],
  ) {}

  /** `processes` (at least 2) child processes, `spec.dashboards` split evenly between them. */
  static async start(
    processes: number,
    spec: Omit<DashboardSpec, 'connectConcurrency' | 'pollIntervalMs' | 'initial'> &
      Partial<DashboardSpec>,
  ): Promise<DashboardGroup> {
    const count = Math.max(2, processes);
    const list = children<typeof dashboardHandlers>('dashboards', count);
    try {
      const ready = await Promise.all(
        list.map((child, i) =>
          child.call('init', {
            initial: null,
            pollIntervalMs: 1_000,
            connectConcurrency: 32,
            ...spec,
            dashboards: Math.floor(spec.dashboards / count) + (i < spec.dashboards % count ? 1 : 0),
          }),
        ),
      );
      const opened = ready.reduce((sum, r) => sum + r.opened, 0);
      return new DashboardGroup(
        list,
        opened,
        ready.flatMap((r) => r.failures),
      );
    } catch (error) {
      await exitAll(list);
      throw error;
    }
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid);
  }

  /** Waits until every open dashboard shows `expect`; how long that took, or null on timeout. */
  async waitFor(expect: Health[], timeoutMs: number): Promise<number | null> {
    const started = preciseNow();
    while (preciseNow() - started < timeoutMs) {
      const caughtUp = await Promise.all(this.children.map((c) => c.call('probe', expect)));
      if (caughtUp.reduce((a, b) => a + b, 0) >= this.opened) return preciseNow() - started;
      await sleep(50);
    }
    return null;
  }

  async match(changes: PresenceChange[], since: number, rule: MatchRule): Promise<Delivery> {
    const parts = await Promise.all(
      this.children.map((c) => c.call('match', changes, since, rule)),
    );
    const merge = (pick: (s: DeliverySummary) => ByHealth<string>): ByHealth<LatencySummary> =>
      byHealth((key) => Histogram.from(parts.map((s) => pick(s)[key])).summary());
    const sum = (pick: (s: DeliverySummary) => number): number =>
      parts.reduce((total, s) => total + pick(s), 0);
    const expected = sum((s) => s.expected);
    const received = sum((s) => s.received);
    return {
      dashboards: sum((s) => s.dashboards),
      expected,
      received,
      lost: expected - received,
      unexpected: sum((s) => s.unexpected),
      latency: merge((s) => s.latency),
      fromEventAt: merge((s) => s.fromEventAt),
      toEventAt: merge((s) => s.toEventAt),
      errors: parts.flatMap((s) => s.errors).slice(0, 5),
      errorCount: sum((s) => s.errorCount),
    };
  }

  exit(): Promise<void> {
    return exitAll(this.children);
  }
}

type Driver = Child<typeof driverHandlers>;

/**
 * One presence run against `baseUrl`: the driver (in flip mode its nodes connect first, so the
 * dashboards subscribe at the live edge), then the dashboards; both exit after `body`.
 */
export async function presenceRun<T>(
  baseUrl: string,
  fleet: WatchedFleet,
  drive: Pick<DriverSpec, 'mode' | 'changes' | 'rate' | 'holdMs'>,
  watch: Pick<DashboardSpec, 'mode' | 'dashboards'> &
    Partial<DashboardSpec> & { processes: number },
  body: (driver: Driver, opened: number, dashboards: DashboardGroup) => Promise<T>,
): Promise<T> {
  const driver = new Child<typeof driverHandlers>('presence-driver');
  let dashboards: DashboardGroup | null = null;
  try {
    const spec = { ...drive, baseUrl, nodes: fleet.nodes, requestTimeoutMs: 10_000 };
    const { opened } = await driver.call('init', spec);
    const { processes, ...rest } = watch;
    const common = { baseUrl, token: fleet.token, nodeIds: fleet.nodeIds };
    dashboards = await DashboardGroup.start(processes, { ...common, ...rest });
    return await body(driver, opened, dashboards);
  } finally {
    await driver.exit();
    await dashboards?.exit();
  }
}

/** The driver's log, summed up for the report and the results file (the log itself is long). */
export type DriverSummary = ReturnType<typeof summariseDriver>;

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
