/** The orchestrator's side of a load run: docs/performance.md, "How the harness works". */
import { Histogram } from './histogram.js';
import { children, count, exitAll, preciseNow, sleep, sleepUntil, sum } from './ipc.js';
import { pgDelta, pgSnapshot, tableDelta } from './postgres.js';
import { rssBytes, sampleUsage, type UsageWindow } from './proc.js';
import type { handlers, Step, Transport } from './roles/load.js';
import type { BenchContext } from './scenario.js';
import type { ServerProcess } from './servers.js';
import type { NodeIdentity } from './wire.js';

export type { Step, Transport };

export interface LoadPlan {
  transport: Transport;
  nodes: NodeIdentity[];
  steps: Step[];
  connectConcurrency?: number;
  /** Called when a step's window is known (epoch ms): a scenario may act inside it. */
  onStep?: (windowStart: number) => void;
}

export type StepResult = ReturnType<typeof stepResult>;
export type LoadResult = Awaited<ReturnType<typeof runLoad>>;

type Generator = ReturnType<typeof children<typeof handlers>>[number];
type Report = Awaited<ReturnType<(typeof handlers)['stop']>>;

/** Tether's metrics history table: its row counters are reported too. */
const HISTORY_TABLE = 'runtime_node_metrics';

export const failedOf = (s: Pick<StepResult, 'errors' | 'timeouts'>): number =>
  sum(Object.values(s.errors)) + s.timeouts;

/** What was measured in the window: the generators' reports, the samples, the WAL and counters. */
interface Measured {
  window: UsageWindow;
  loopLag: Awaited<ReturnType<ServerProcess['loopLag']>>;
  delta: ReturnType<typeof pgDelta>;
  history?: ReturnType<typeof tableDelta>;
}

/** A step's result; without `measured`, a step not run because the server had died. */
function stepResult(step: Step, nodes: number, reports: Report[], m?: Measured) {
  const seconds = step.measureMs / 1000;
  const total = (k: 'offered' | 'ok' | 'timeouts' | 'acksInWindow') =>
    sum(reports.map((r) => r[k]));
  const acks = total('acksInWindow');
  const errors: Record<string, number> = {};
  for (const r of reports) for (const [code, n] of Object.entries(r.errors)) count(errors, code, n);
  // The generators' once-a-second backlog samples, summed position by position.
  const length = Math.min(...reports.map((r) => r.backlog.length));
  const backlog = Array.from({ length }, (_, i) => sum(reports.map((r) => r.backlog[i]!)));
  const { updates = 0, hotUpdates = 0, walBytes = 0, writeTransactions = 0 } = m?.delta ?? {};
  return {
    cadenceMs: step.cadenceMs,
    payload: step.payload,
    nodes,
    measureSeconds: seconds,
    offeredRate: total('offered') / seconds,
    achievedRate: acks / seconds,
    offered: total('offered'),
    ok: total('ok'),
    errors,
    timeouts: total('timeouts'),
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
  ctx: BenchContext,
  server: ServerProcess,
  generators: Generator[],
  step: Step,
  plan: LoadPlan,
) {
  const startAt = preciseNow() + 200;
  await Promise.all(generators.map((g) => g.call('start', step, startAt)));
  const windowStart = startAt + step.warmupMs;
  plan.onStep?.(windowStart);
  await sleepUntil(windowStart);

  await server.loopLag(); // resets the server's delay histogram
  const presence = ctx.presenceTables[server.target];
  const tether = server.target === 'tether';
  const tables = tether ? [presence, HISTORY_TABLE] : [presence];
  const pgBefore = await pgSnapshot(ctx.probe, tables);
  const usage = await sampleUsage({
    server: server.pid,
    postmaster: ctx.postmasterPid,
    clients: generators.map((g) => g.pid),
  });
  await sleepUntil(windowStart + step.measureMs);
  const loopLag = await server.loopLag();
  const pgAfter = await pgSnapshot(ctx.probe, tables);
  const window = await usage.stop();

  const reports = await Promise.all(generators.map((g) => g.call('stop')));
  return stepResult(step, plan.nodes.length, reports, {
    window,
    loopLag,
    delta: pgDelta(pgBefore, pgAfter, presence),
    ...(tether ? { history: tableDelta(pgBefore, pgAfter, HISTORY_TABLE) } : {}),
  });
}

/** Connects `plan.nodes` through the generator processes and runs every step in order. */
export async function runLoad(ctx: BenchContext, server: ServerProcess, plan: LoadPlan) {
  const processes = Math.max(2, ctx.generators);
  const slices: NodeIdentity[][] = Array.from({ length: processes }, () => []);
  plan.nodes.forEach((node, i) => slices[i % processes]!.push(node));
  const serverRssBeforeBytes = await rssBytes(server.pid);
  const generators = children<typeof handlers>('load', processes);
  try {
    const spec = {
      baseUrl: server.baseUrl,
      connectConcurrency: plan.connectConcurrency ?? 64,
      httpMaxSockets: 128,
      requestTimeoutMs: ctx.quick ? 3_000 : 10_000,
    };
    const ready = await Promise.all(
      generators.map((g, i) => g.call('init', { ...spec, nodes: slices[i]! }, plan.transport)),
    );
    await sleep(500); // let the connect burst settle
    const connect = {
      opened: sum(ready.map((r) => r.opened)),
      failed: sum(ready.map((r) => r.failed)),
      retried: sum(ready.map((r) => r.retried)),
      deferred: sum(ready.map((r) => r.deferred)),
      durationMs: Math.max(...ready.map((r) => r.durationMs)),
      latency: Histogram.from(ready.map((r) => r.connect)).summary(),
      failures: ready.flatMap((r) => r.failures).slice(0, 10),
      serverRssBeforeBytes,
      serverRssAfterBytes: await rssBytes(server.pid),
    };
    if (plan.transport === 'ws') {
      const trouble = connect.failed + connect.retried + connect.deferred > 0;
      ctx.log(
        `  connected ${connect.opened}/${plan.nodes.length} sockets in ${(connect.durationMs / 1000).toFixed(1)} s` +
          (trouble
            ? ` (${connect.failed} failed, ${connect.retried} retried, ${connect.deferred} deferred` +
              (connect.failures.length > 0 ? `: ${connect.failures.slice(0, 3).join('; ')})` : ')')
            : ''),
      );
    }
    const steps: StepResult[] = [];
    for (const step of plan.steps) {
      const nodes = plan.nodes.length;
      const offered = Math.round((1000 / step.cadenceMs) * nodes);
      if (server.exit() !== null) {
        // Not run: nothing measured, every beat it would have offered lost.
        ctx.log(`  ${offered}/s: skipped, the server is down`);
        const lost = Math.round((nodes * step.measureMs) / step.cadenceMs);
        const empty = new Histogram().toData();
        const down = { offered: lost, ok: 0, errors: { server_down: lost }, timeouts: 0 };
        const report = { ...down, acksInWindow: 0, backlog: [], latency: empty, sendLag: empty };
        steps.push(stepResult(step, nodes, [report]));
        continue;
      }
      const result = await measureStep(ctx, server, generators, step, plan);
      ctx.log(
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
