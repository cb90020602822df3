/**
 * The orchestrator's side of a load run: forks the generator processes (nodes dealt round-robin),
 * connects them, then for each step starts open-loop beating at a common instant, and over the
 * measurement window (after the warm-up) samples the server process (/proc), PostgreSQL (CPU of
 * its processes, WAL position, the presence table's update counters), and the server's
 * event-loop delay. PostgreSQL's counters are read while the load still runs, so both ends of
 * the window carry the same (≈ 1 s) statistics-flush delay and it cancels out.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { Histogram, type LatencySummary } from './histogram.js';
import { pgDelta, pgSnapshot, tableDelta } from './postgres.js';
import { rssBytes, sampleMachine, sampleProcess, type ProcessUsage } from './proc.js';
import {
  preciseNow,
  type ConnectReport,
  type FromWorker,
  type NodeIdentity,
  type Step,
  type StepReport,
  type ToWorker,
  type Transport,
} from './protocol.js';
import type { ServerProcess } from './servers.js';

const WORKER = fileURLToPath(new URL('./worker/main.ts', import.meta.url));
const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));

export interface LoadPlan {
  transport: Transport;
  nodes: NodeIdentity[];
  steps: Step[];
  generators: number;
  connectConcurrency?: number;
  httpMaxSockets?: number;
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
  /**
   * Called when a step is started, with its instants (epoch ms): lets a scenario act inside the
   * measurement window while the load runs (e.g. close some nodes' sockets under ingest load).
   */
  onStep?: (
    step: Step,
    window: { startAt: number; windowStart: number; windowEnd: number },
  ) => void;
}

export interface WriteStats {
  /** Row updates of the presence table in the window (statistics counters: see PgSnapshot). */
  updates: number;
  /** Write transactions per acknowledged beat (every writer included; < 1 when beats share commits). */
  transactionsPerBeat: number | null;
  hotUpdates: number;
  hotShare: number | null;
  walBytes: number;
  walBytesPerBeat: number | null;
  /** The metrics history table's row counters in the window (Tether only). */
  history?: { inserts: number; updates: number; hotUpdates: number };
}

export interface StepResult {
  cadenceMs: number;
  payload: Step['payload'];
  nodes: number;
  measureSeconds: number;
  offeredRate: number;
  achievedRate: number;
  offered: number;
  ok: number;
  errors: Record<string, number>;
  timeouts: number;
  latency: LatencySummary;
  sendLag: LatencySummary;
  backlog: { start: number; end: number; max: number };
  server: ProcessUsage | null;
  postgresCpuPercent: number | null;
  generatorCpuPercent: number[];
  /** CPU the rest of the machine used meanwhile (other people's work), percent of one core. */
  othersCpuPercent: number | null;
  loopLag: { p99Ms: number; maxMs: number } | null;
  writes: WriteStats;
}

export interface ConnectResult {
  opened: number;
  failed: number;
  retried: number;
  durationMs: number;
  latency: LatencySummary;
  failures: string[];
  serverRssBeforeBytes: number | null;
  serverRssAfterBytes: number | null;
}

export interface LoadResult {
  connect: ConnectResult;
  steps: StepResult[];
}

class WorkerHandle {
  readonly child: ChildProcess;
  readonly #waiting: { type: FromWorker['type']; resolve: (m: FromWorker) => void }[] = [];
  readonly #failed: Promise<never>;

  constructor() {
    this.child = fork(WORKER, [], {
      cwd: BENCH_DIR,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#failed = new Promise<never>((_, reject) => {
      this.child.on('message', (message: FromWorker) => {
        if (message.type === 'fatal') reject(new Error(`load generator: ${message.message}`));
        const index = this.#waiting.findIndex((w) => w.type === message.type);
        if (index >= 0) this.#waiting.splice(index, 1)[0]!.resolve(message);
      });
      this.child.once('exit', (code) => {
        if (this.#waiting.length > 0) reject(new Error(`load generator exited (${code})`));
      });
    });
    this.#failed.catch(() => undefined);
  }

  send(message: ToWorker): void {
    this.child.send(message);
  }

  next<T extends FromWorker['type']>(type: T): Promise<Extract<FromWorker, { type: T }>> {
    const answer = new Promise<FromWorker>((resolve) => this.#waiting.push({ type, resolve }));
    return Promise.race([answer, this.#failed]) as Promise<Extract<FromWorker, { type: T }>>;
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.send({ type: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

const sleepUntil = (at: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, at - preciseNow())));

/** Sums the workers' once-a-second backlog samples position by position. */
function backlogOf(reports: StepReport[]): StepResult['backlog'] {
  const length = Math.min(...reports.map((r) => r.backlog.length));
  const totals: number[] = [];
  for (let i = 0; i < length; i++) {
    totals.push(reports.reduce((sum, r) => sum + r.backlog[i]!.inFlight, 0));
  }
  return {
    start: totals[0] ?? 0,
    end: totals[totals.length - 1] ?? 0,
    max: totals.length ? Math.max(...totals) : 0,
  };
}

function mergeErrors(reports: StepReport[]): Record<string, number> {
  const errors: Record<string, number> = {};
  for (const r of reports) {
    for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  }
  return errors;
}

async function measureStep(
  env: LoadEnvironment,
  workers: WorkerHandle[],
  step: Step,
  nodes: number,
): Promise<StepResult> {
  const startAt = preciseNow() + 200;
  for (const w of workers) w.send({ type: 'start', step, startAt });
  const windowStart = startAt + step.warmupMs;
  const windowEnd = windowStart + step.measureMs;
  env.onStep?.(step, { startAt, windowStart, windowEnd });
  await sleepUntil(windowStart);

  await env.server.loopLag(); // resets the server's delay histogram
  const tables = [env.presenceTable, ...(env.historyTable ? [env.historyTable] : [])];
  const pgBefore = await pgSnapshot(env.pg, tables);
  const serverSampler = await sampleProcess(env.server.pid);
  const pgSampler = env.postmasterPid ? await sampleProcess(env.postmasterPid, true) : null;
  const machineSampler = await sampleMachine();

  await sleepUntil(windowEnd);
  const loopLag = await env.server.loopLag();
  const pgAfter = await pgSnapshot(env.pg, tables);
  const server = await serverSampler.stop();
  const postgres = pgSampler ? await pgSampler.stop() : null;
  const machineCpu = await machineSampler.stop();

  const results = await Promise.all(
    workers.map(async (w) => {
      const answer = w.next('result');
      w.send({ type: 'stop' });
      return (await answer).report;
    }),
  );
  const delta = await pgDelta(env.pg, pgBefore, pgAfter, env.presenceTable);
  const seconds = step.measureMs / 1000;
  const generatorCpuPercent = results.map((r) => (r.cpuMs / step.measureMs) * 100);
  const acks = results.reduce((s, r) => s + r.acksInWindow, 0);
  return {
    cadenceMs: step.cadenceMs,
    payload: step.payload,
    nodes,
    measureSeconds: seconds,
    offeredRate: results.reduce((s, r) => s + r.offered, 0) / seconds,
    achievedRate: acks / seconds,
    offered: results.reduce((s, r) => s + r.offered, 0),
    ok: results.reduce((s, r) => s + r.ok, 0),
    errors: mergeErrors(results),
    timeouts: results.reduce((s, r) => s + r.timeouts, 0),
    latency: Histogram.from(results.map((r) => r.latency)).summary(),
    sendLag: Histogram.from(results.map((r) => r.sendLag)).summary(),
    backlog: backlogOf(results),
    server,
    postgresCpuPercent: postgres?.cpuPercent ?? null,
    generatorCpuPercent,
    othersCpuPercent:
      server && postgres
        ? Math.max(
            0,
            machineCpu -
              server.cpuPercent -
              postgres.cpuPercent -
              generatorCpuPercent.reduce((a, b) => a + b, 0),
          )
        : null,
    loopLag,
    writes: {
      updates: delta.updates,
      transactionsPerBeat: acks > 0 ? delta.writeTransactions / acks : null,
      hotUpdates: delta.hotUpdates,
      hotShare: delta.updates > 0 ? delta.hotUpdates / delta.updates : null,
      walBytes: delta.walBytes,
      walBytesPerBeat: acks > 0 ? delta.walBytes / acks : null,
      ...(env.historyTable ? { history: tableDelta(pgBefore, pgAfter, env.historyTable) } : {}),
    },
  };
}

/** Connects `plan.nodes` through `plan.generators` processes and runs every step in order. */
export async function runLoad(plan: LoadPlan, env: LoadEnvironment): Promise<LoadResult> {
  const count = Math.max(2, plan.generators);
  const slices: NodeIdentity[][] = Array.from({ length: count }, () => []);
  plan.nodes.forEach((node, i) => slices[i % count]!.push(node));
  const serverRssBeforeBytes = await rssBytes(env.server.pid);
  const workers = slices.map(() => new WorkerHandle());
  try {
    const ready = await Promise.all(
      workers.map(async (w, workerIndex) => {
        const answer = w.next('ready');
        w.send({
          type: 'init',
          spec: {
            workerIndex,
            transport: plan.transport,
            baseUrl: env.server.baseUrl,
            nodes: slices[workerIndex]!,
            connectConcurrency: plan.connectConcurrency ?? 64,
            httpMaxSockets: plan.httpMaxSockets ?? 128,
            requestTimeoutMs: plan.requestTimeoutMs ?? 10_000,
          },
        });
        return (await answer).report;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 500)); // let the connect burst settle
    const connect = summariseConnect(ready, await rssBytes(env.server.pid), serverRssBeforeBytes);
    if (plan.transport === 'ws') {
      env.log(
        `  connected ${connect.opened}/${plan.nodes.length} sockets in ${(connect.durationMs / 1000).toFixed(1)} s` +
          (connect.failed + connect.retried > 0
            ? ` (${connect.failed} failed, ${connect.retried} retried: ${connect.failures.slice(0, 3).join('; ')})`
            : ''),
      );
    }
    const steps: StepResult[] = [];
    for (const step of plan.steps) {
      const offered = Math.round((1000 / step.cadenceMs) * plan.nodes.length);
      if (env.server.exit() !== null) {
        env.log(`  ${offered}/s: skipped, the server is down`);
        steps.push(serverDownStep(step, plan.nodes.length));
        continue;
      }
      const result = await measureStep(env, workers, step, plan.nodes.length);
      const failed = Object.values(result.errors).reduce((a, b) => a + b, 0) + result.timeouts;
      env.log(
        `  ${offered}/s offered: achieved ${result.achievedRate.toFixed(0)}/s, ` +
          `p99 ${result.latency.p99Ms.toFixed(1)} ms, failed ${failed}`,
      );
      steps.push(result);
    }
    return { connect, steps };
  } finally {
    await Promise.all(workers.map((w) => w.exit()));
  }
}

/** A step not run because the server had already died: nothing measured, all offered lost. */
function serverDownStep(step: Step, nodes: number): StepResult {
  const empty = new Histogram().summary();
  const offered = Math.round((nodes * step.measureMs) / step.cadenceMs);
  return {
    cadenceMs: step.cadenceMs,
    payload: step.payload,
    nodes,
    measureSeconds: step.measureMs / 1000,
    offeredRate: offered / (step.measureMs / 1000),
    achievedRate: 0,
    offered,
    ok: 0,
    errors: { server_down: offered },
    timeouts: 0,
    latency: empty,
    sendLag: empty,
    backlog: { start: 0, end: 0, max: 0 },
    server: null,
    postgresCpuPercent: null,
    generatorCpuPercent: [],
    othersCpuPercent: null,
    loopLag: null,
    writes: {
      updates: 0,
      transactionsPerBeat: null,
      hotUpdates: 0,
      hotShare: null,
      walBytes: 0,
      walBytesPerBeat: null,
    },
  };
}

function summariseConnect(
  reports: ConnectReport[],
  rssAfter: number | null,
  rssBefore: number | null,
): ConnectResult {
  return {
    opened: reports.reduce((s, r) => s + r.opened, 0),
    failed: reports.reduce((s, r) => s + r.failed, 0),
    retried: reports.reduce((s, r) => s + r.retried, 0),
    durationMs: Math.max(...reports.map((r) => r.durationMs)),
    latency: Histogram.from(reports.map((r) => r.connect)).summary(),
    failures: reports.flatMap((r) => r.failures).slice(0, 10),
    serverRssBeforeBytes: rssBefore,
    serverRssAfterBytes: rssAfter,
  };
}
