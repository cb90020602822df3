/**
 * The orchestrator's side of the presence-latency scenarios (fanout, close-offline): their own
 * fresh nodes and dashboard token, a fresh server per run, dashboard processes (dashboards split
 * between them, every one tracking all the nodes), a presence-driver process, and the probes of
 * a measurement window (server, PostgreSQL, the children, the whole machine).
 */
import { BenchChild } from './child.js';
import { Histogram, type HistogramData, type LatencySummary } from './histogram.js';
import { createFleet } from './identities.js';
import type {
  ByHealth,
  DashboardMode,
  DeliverySummary,
  DriverReport,
  DriverSpec,
  FromDashboard,
  FromDriver,
  Health,
  MatchRule,
  PresenceChange,
  ToDashboard,
  ToDriver,
} from './presence-protocol.js';
import { sampleMachine, sampleProcess, type ProcessUsage } from './proc.js';
import { preciseNow, type NodeIdentity } from './protocol.js';
import type { BenchContext } from './scenarios/types.js';
import type { ServerExit, ServerProcess, Target } from './servers.js';
import { issueParticipantToken, type Db } from './tether-internals.js';

const DASHBOARD = new URL('./worker/dashboard.ts', import.meta.url);
const DRIVER = new URL('./worker/presence-driver.ts', import.meta.url);

type DashboardChild = BenchChild<ToDashboard, FromDashboard>;

export interface DashboardOptions {
  /** Child processes (at least 2), dashboards split evenly between them. */
  processes: number;
  mode: DashboardMode;
  baseUrl: string;
  token: string;
  dashboards: number;
  nodeIds: string[];
  /** What every dashboard knows of the nodes at the start (a feed follows from a known state). */
  initial?: Health | null;
  pollIntervalMs?: number;
}

export interface Delivery {
  dashboards: number;
  expected: number;
  received: number;
  lost: number;
  unexpected: number;
  latency: ByHealth<LatencySummary>;
  fromEventAt: ByHealth<LatencySummary>;
  toEventAt: ByHealth<LatencySummary>;
  errors: string[];
  errorCount: number;
}

export interface WatchedFleet {
  nodes: NodeIdentity[];
  nodeIds: string[];
  /** A participant token of the nodes' owner (role `member`): it sees exactly these nodes. */
  token: string;
}

/**
 * Fresh nodes for a presence scenario (offline, never touched by another scenario, so every
 * change is the driver's) and a dashboard token of their owner, issued as `token.create` does.
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

/**
 * Runs `measure` against a fresh server process of `target`, then stops the server (also when
 * `measure` failed) and adds how it ended: a crash under load is part of the result.
 */
export async function withFreshServer<T extends object>(
  ctx: Pick<BenchContext, 'startServer' | 'log'>,
  target: Target,
  label: string,
  measure: (server: ServerProcess) => Promise<T>,
): Promise<T & { serverExit: ServerExit }> {
  const server = await ctx.startServer(target, label);
  ctx.log(` ${target} (pid ${server.pid}):`);
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await measure(server) };
  } catch (error) {
    outcome = { ok: false, error };
  }
  const serverExit = await server.stop();
  if (serverExit.crashed) {
    ctx.log(`  ${target} server CRASHED (code ${serverExit.code}); see ${server.logFile}`);
  }
  if (!outcome.ok) throw outcome.error;
  return { ...outcome.value, serverExit };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class DashboardGroup {
  readonly children: DashboardChild[];
  readonly opened: number;
  readonly failures: string[];

  private constructor(children: DashboardChild[], opened: number, failures: string[]) {
    this.children = children;
    this.opened = opened;
    this.failures = failures;
  }

  static async start(options: DashboardOptions): Promise<DashboardGroup> {
    const count = Math.max(2, options.processes);
    const children = Array.from(
      { length: count },
      (_, i) => new BenchChild<ToDashboard, FromDashboard>(DASHBOARD, `dashboards ${i}`),
    );
    try {
      const ready = await Promise.all(
        children.map((child, i) =>
          child.request(
            {
              type: 'init',
              spec: {
                workerIndex: i,
                mode: options.mode,
                baseUrl: options.baseUrl,
                token: options.token,
                dashboards:
                  Math.floor(options.dashboards / count) + (i < options.dashboards % count ? 1 : 0),
                nodeIds: options.nodeIds,
                initial: options.initial ?? null,
                pollIntervalMs: options.pollIntervalMs ?? 1_000,
                connectConcurrency: 32,
              },
            },
            'ready',
          ),
        ),
      );
      return new DashboardGroup(
        children,
        ready.reduce((sum, r) => sum + r.opened, 0),
        ready.flatMap((r) => r.failures),
      );
    } catch (error) {
      await Promise.all(children.map((c) => c.exit()));
      throw error;
    }
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid);
  }

  /** How many dashboards show every tracked node in the `expect`ed health right now. */
  async caughtUp(expect: Health[]): Promise<number> {
    const answers = await Promise.all(
      this.children.map((c) => c.request({ type: 'probe', expect }, 'probed')),
    );
    return answers.reduce((sum, a) => sum + a.caughtUp, 0);
  }

  /** Waits until every open dashboard shows `expect`; returns how long that took, or null on timeout. */
  async waitFor(expect: Health[], timeoutMs: number): Promise<number | null> {
    const started = preciseNow();
    while (preciseNow() - started < timeoutMs) {
      if ((await this.caughtUp(expect)) >= this.opened) return preciseNow() - started;
      await sleep(50);
    }
    return null;
  }

  async match(changes: PresenceChange[], since: number, rule: MatchRule): Promise<Delivery> {
    const parts = await Promise.all(
      this.children.map((c) => c.request({ type: 'match', changes, since, rule }, 'matched')),
    );
    return mergeDeliveries(parts.map((p) => p.summary));
  }

  exit(): Promise<void> {
    return Promise.all(this.children.map((c) => c.exit())).then(() => undefined);
  }
}

function mergeDeliveries(parts: DeliverySummary[]): Delivery {
  const merge = (
    pick: (s: DeliverySummary) => ByHealth<HistogramData>,
  ): ByHealth<LatencySummary> => {
    const one = (key: keyof ByHealth<unknown>): LatencySummary =>
      Histogram.from(parts.map((s) => pick(s)[key])).summary();
    return {
      all: one('all'),
      online: one('online'),
      degraded: one('degraded'),
      offline: one('offline'),
    };
  };
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

export class PresenceDriver {
  readonly #child = new BenchChild<ToDriver, FromDriver>(DRIVER, 'presence driver');
  opened = 0;
  failures: string[] = [];

  static async start(spec: DriverSpec): Promise<PresenceDriver> {
    const driver = new PresenceDriver();
    try {
      const ready = await driver.#child.request({ type: 'init', spec }, 'ready');
      driver.opened = ready.opened;
      driver.failures = ready.failures;
      return driver;
    } catch (error) {
      await driver.exit();
      throw error;
    }
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Runs the schedule from `startAt`; resolves once every change has been answered. */
  async run(startAt: number): Promise<DriverReport> {
    return (await this.#child.request({ type: 'start', startAt }, 'done')).report;
  }

  exit(): Promise<void> {
    return this.#child.exit();
  }
}

export interface WindowUsage {
  seconds: number;
  server: ProcessUsage | null;
  postgresCpuPercent: number | null;
  /** CPU of each child (dashboards, driver), percent of one core. */
  childrenCpuPercent: number[];
  /** The rest of the machine (other people's work), percent of one core. */
  othersCpuPercent: number | null;
}

/** Samples the server, PostgreSQL, the bench's children and the machine until `stop()`. */
export async function sampleWindow(
  serverPid: number,
  postmasterPid: number | null,
  childPids: number[],
): Promise<{ stop(): Promise<WindowUsage> }> {
  const started = preciseNow();
  const server = await sampleProcess(serverPid);
  const postgres = postmasterPid ? await sampleProcess(postmasterPid, true) : null;
  const children = await Promise.all(childPids.map((pid) => sampleProcess(pid)));
  const machine = await sampleMachine();
  return {
    async stop() {
      const serverUsage = await server.stop();
      const postgresUsage = postgres ? await postgres.stop() : null;
      const childUsage = await Promise.all(children.map((c) => c.stop()));
      const machineCpu = await machine.stop();
      const childrenCpuPercent = childUsage.map((u) => u?.cpuPercent ?? 0);
      const known =
        (serverUsage?.cpuPercent ?? 0) +
        (postgresUsage?.cpuPercent ?? 0) +
        childrenCpuPercent.reduce((a, b) => a + b, 0);
      return {
        seconds: (preciseNow() - started) / 1000,
        server: serverUsage,
        postgresCpuPercent: postgresUsage?.cpuPercent ?? null,
        childrenCpuPercent,
        othersCpuPercent: postgresUsage ? Math.max(0, machineCpu - known) : null,
      };
    },
  };
}

/** The driver's log, summed up for the report and the results file (the log itself is long). */
export interface DriverSummary {
  /** Successful changes, by the health they changed to, and all. */
  made: ByHealth<number>;
  failed: number;
  /** Flip turns skipped because the node's previous change was unanswered. */
  skipped: number;
  failures: string[];
  lagMaxMs: number;
  /** Driver-side latency of the successful actions (beat → ack, open → first beat acked). */
  actionLatency: ByHealth<LatencySummary>;
}

export function summariseDriver(report: DriverReport): DriverSummary {
  const keys = ['all', 'online', 'degraded', 'offline'] as const;
  const made = { all: 0, online: 0, degraded: 0, offline: 0 };
  const latency = {
    all: new Histogram(),
    online: new Histogram(),
    degraded: new Histogram(),
    offline: new Histogram(),
  };
  for (const c of report.changes) {
    if (!c.ok) continue;
    for (const key of ['all', c.health] as const) {
      made[key]++;
      if (c.ackMs !== null) latency[key].recordMs(c.ackMs);
    }
  }
  const actionLatency = Object.fromEntries(
    keys.map((k) => [k, latency[k].summary()]),
  ) as ByHealth<LatencySummary>;
  return {
    made,
    failed: report.changes.filter((c) => !c.ok).length,
    skipped: report.skipped,
    failures: report.failures,
    lagMaxMs: report.lagMaxMs,
    actionLatency,
  };
}
