/** The orchestrator's side of a load run: docs/performance.md, "How the harness works". */
import type pg from 'pg';
import { Histogram } from './histogram.js';
import { children, exitAll, preciseNow, sleep, sleepUntil } from './ipc.js';
import { pgDelta, pgSnapshot, tableDelta } from './postgres.js';
import { rssBytes, sampleUsage, type UsageWindow } from './proc.js';
import type { handlers, Step, Transport } from './roles/load.js';
import type { ServerProcess } from './servers.js';
import type { NodeIdentity } from './wire.js';

export type { Step, Transport };

export interface LoadPlan {
  transport: Transport;
  nodes: NodeIdentity[];
  steps: Step[];
  generators: number;
  connectConcurrency?: number;
  requestTimeoutMs?: number;
}

export interface LoadEnvironment {
  server: ServerProcess;
  /** The table this server writes presence to (HOT share is read from its counters). */
  presenceTable: string;
  /** Tether's metrics history table (runtime_node_metrics): its row counters are reported too. */
  historyTable?: string;
  pg: pg.ClientBase;
  postmasterPid: number | null;
  log: (line: string) => void;
  /** Called when a step's window is known (epoch ms): a scenario may act inside it. */
  onStep?: (window: { startAt: number; windowStart: number; windowEnd: number }) => void;
}

export type StepResult = ReturnType<typeof stepResult>;
export type LoadResult = Awaited<ReturnType<typeof runLoad>>;

type Generator = ReturnType<typeof children<typeof handlers>>[number];
type Report = Awaited<ReturnType<(typeof handlers)['stop']>>;

const sum = <T>(items: T[], pick: (item: T) => number): number =>
  items.reduce((total, item) => total + pick(item), 0);

export const failedOf = (s: Pick<StepResult, 'errors' | 'timeouts'>): number =>
  sum(Object.values(s.errors), (n) => n) + s.timeouts;

/** What was measured in the window: the generators' reports, the samples, the WAL and counters. */
interface Measured {
  window: UsageWindow;
  loopLag: Awaited<ReturnType<ServerProcess['loopLag']>>;
  delta: Awaited<ReturnType<typeof pgDelta>>;
  history?: ReturnType<typeof tableDelta>;
}

/** A step's result; without `measured`, a step not run because the server had died. */
function stepResult(step: Step, nodes: number, reports: Report[], m?: Measured) {
  const seconds = step.measureMs / 1000;
  const acks = sum(reports, (r) => r.acksInWindow);
  const errors: Record<string, number> = {};
  for (const r of reports) {
    for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  }
  // The generators' once-a-second backlog samples, summed position by position.
  const length = Math.min(...reports.map((r) => r.backlog.length));
  const backlog = Array.from({ length }, (_, i) => sum(reports, (r) => r.backlog[i]!));
  const offered = sum(reports, (r) => r.offered);
  const { updates = 0, hotUpdates = 0, walBytes = 0, writeTransactions = 0 } = m?.delta ?? {};
  return {
    cadenceMs: step.cadenceMs,
    payload: step.payload,
    nodes,
    measureSeconds: seconds,
    offeredRate: offered / seconds,
    achievedRate: acks / seconds,
    offered,
    ok: sum(reports, (r) => r.ok),
    errors,
    timeouts: sum(reports, (r) => r.timeouts),
    latency: Histogram.from(reports.map((r) => r.latency)).summary(),
    sendLag: Histogram.from(reports.map((r) => r.sendLag)).summary(),
    backlog: { start: backlog[0] ?? 0, end: backlog.at(-1) ?? 0, max: Math.max(0, ...backlog) },
    server: m?.window.server ?? null,
    postgresCpuPercent: m?.window.postgresCpuPercent ?? null,
    generatorCpuPercent: m?.window.clientsCpuPercent ?? [],
    othersCpuPercent: m?.window.othersCpuPercent ?? null,
    loopLag: m?.loopLag ?? null,
    writes: {
      updates,
      transactionsPerBeat: acks > 0 ? writeTransactions / acks : null,
      hotUpdates,
      hotShare: updates > 0 ? hotUpdates / updates : null,
      walBytes,
      walBytesPerBeat: acks > 0 ? walBytes / acks : null,
      ...(m?.history ? { history: m.history } : {}),
    },
  };
}

async function measureStep(
  env: LoadEnvironment,
  generators: Generator[],
  step: Step,
  nodes: number,
) {
  const startAt = preciseNow() + 200;
  await Promise.all(generators.map((g) => g.call('start', step, startAt)));
  const windowStart = startAt + step.warmupMs;
  const windowEnd = windowStart + step.measureMs;
  env.onStep?.({ startAt, windowStart, windowEnd });
  await sleepUntil(windowStart);

  await env.server.loopLag(); // resets the server's delay histogram
  const tables = [env.presenceTable, ...(env.historyTable ? [env.historyTable] : [])];
  const pgBefore = await pgSnapshot(env.pg, tables);
  const usage = await sampleUsage({
    server: env.server.pid,
    postmaster: env.postmasterPid,
    clients: generators.map((g) => g.pid),
  });
  await sleepUntil(windowEnd);
  const loopLag = await env.server.loopLag();
  const pgAfter = await pgSnapshot(env.pg, tables);
  const window = await usage.stop();

  const reports = await Promise.all(generators.map((g) => g.call('stop')));
  const delta = await pgDelta(env.pg, pgBefore, pgAfter, env.presenceTable);
  const history = env.historyTable ? tableDelta(pgBefore, pgAfter, env.historyTable) : undefined;
  return stepResult(step, nodes, reports, {
    window,
    loopLag,
    delta,
    ...(history ? { history } : {}),
  });
}

/** Connects `plan.nodes` through `plan.generators` processes and runs every step in order. */
export async function runLoad(plan: LoadPlan, env: LoadEnvironment) {
  const count = Math.max(2, plan.generators);
  const slices: NodeIdentity[][] = Array.from({ length: count }, () => []);
  plan.nodes.forEach((node, i) => slices[i % count]!.push(node));
  const serverRssBeforeBytes = await rssBytes(env.server.pid);
  const generators = children<typeof handlers>('load', count);
  try {
    const spec = {
      baseUrl: env.server.baseUrl,
      connectConcurrency: plan.connectConcurrency ?? 64,
      httpMaxSockets: 128,
      requestTimeoutMs: plan.requestTimeoutMs ?? 10_000,
    };
    const ready = await Promise.all(
      generators.map((g, i) => g.call('init', { ...spec, nodes: slices[i]! }, plan.transport)),
    );
    await sleep(500); // let the connect burst settle
    const connect = {
      opened: sum(ready, (r) => r.opened),
      failed: sum(ready, (r) => r.failed),
      retried: sum(ready, (r) => r.retried),
      durationMs: Math.max(...ready.map((r) => r.durationMs)),
      latency: Histogram.from(ready.map((r) => r.connect)).summary(),
      failures: ready.flatMap((r) => r.failures).slice(0, 10),
      serverRssBeforeBytes,
      serverRssAfterBytes: await rssBytes(env.server.pid),
    };
    if (plan.transport === 'ws') {
      const trouble = connect.failed + connect.retried > 0;
      env.log(
        `  connected ${connect.opened}/${plan.nodes.length} sockets in ${(connect.durationMs / 1000).toFixed(1)} s` +
          (trouble
            ? ` (${connect.failed} failed, ${connect.retried} retried: ${connect.failures.slice(0, 3).join('; ')})`
            : ''),
      );
    }
    const steps: StepResult[] = [];
    for (const step of plan.steps) {
      const nodes = plan.nodes.length;
      const offered = Math.round((1000 / step.cadenceMs) * nodes);
      if (env.server.exit() !== null) {
        // Not run: nothing measured, every beat it would have offered lost.
        env.log(`  ${offered}/s: skipped, the server is down`);
        const lost = Math.round((nodes * step.measureMs) / step.cadenceMs);
        const empty = new Histogram().toData();
        const down = { offered: lost, ok: 0, errors: { server_down: lost }, timeouts: 0 };
        const report = { ...down, acksInWindow: 0, backlog: [], latency: empty, sendLag: empty };
        steps.push(stepResult(step, nodes, [report]));
        continue;
      }
      const result = await measureStep(env, generators, step, nodes);
      env.log(
        `  ${offered}/s offered: achieved ${result.achievedRate.toFixed(0)}/s, ` +
          `p99 ${result.latency.p99Ms.toFixed(1)} ms, failed ${failedOf(result)}`,
      );
      steps.push(result);
    }
    return { connect, steps };
  } finally {
    await exitAll(generators);
  }
}
