/** Commands: an operator invokes `echo` on online nodes and waits for each result. */
import { Histogram } from '../histogram.js';
import { Child, children, exitAll, sleep } from '../ipc.js';
import { compareRows, metric, ms, num, type Column } from '../report.js';
import type { handlers } from '../roles/commands.js';
import {
  closeSession,
  createSession,
  type BenchContext,
  type FloorCheck,
  type Scenario,
  type ScenarioResult,
  withServer,
} from '../scenario.js';
import type { ServerProcess, Target } from '../servers.js';
import { issueParticipantToken } from '../tether-internals.js';

interface Shape {
  nodes: number;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
}

const FULL: Shape = { nodes: 1_000, concurrency: 100, warmupMs: 5_000, durationMs: 20_000 };
const QUICK: Shape = { nodes: 100, concurrency: 20, warmupMs: 2_000, durationMs: 8_000 };

/** Nodes poll (and the caller polls) this often in the baseline. */
const POLL_MS = 1_000;

/**
 * One operator invokes hundreds of commands a second, and every node acknowledges and answers each:
 * the per-principal mutation limit (600/min by default) is raised out of the way.
 */
const TETHER_COMMANDS_ENV = { TETHER_RATE_MUTATIONS_PER_MINUTE: '10000000' };

type TargetRun = Awaited<ReturnType<typeof runTarget>>;

async function runTarget(ctx: BenchContext, target: Target, shape: Shape, token: string) {
  const nodes = ctx.fleet.nodes.slice(0, shape.nodes);
  const sessionId = target === 'tether' ? await createSession(ctx, 'bench commands') : null;
  const env = target === 'tether' ? { env: TETHER_COMMANDS_ENV } : {};
  try {
    return await withServer(ctx, target, 'commands', (server) => measure(server), {
      ...env,
      quiet: true,
    });
  } finally {
    if (sessionId) await closeSession(ctx, sessionId);
  }

  async function measure(server: ServerProcess) {
    ctx.log(` ${target} (pid ${server.pid}): ${num(nodes.length)} nodes`);
    const hosts = children<typeof handlers>('commands', ctx.generators);
    let driver: Child<typeof handlers> | null = null;
    try {
      const per = Math.ceil(nodes.length / ctx.generators);
      const started = performance.now();
      await Promise.all(
        hosts.map((host, h) =>
          host.call('init', {
            ...{
              target,
              baseUrl: server.baseUrl,
              ownerParticipantId: ctx.fleet.ownerParticipantId,
            },
            ...{ sessionId, nodes: nodes.slice(h * per, (h + 1) * per) },
            ...{ connectConcurrency: 50, pollIntervalMs: POLL_MS },
          }),
        ),
      );
      let online = 0;
      for (;;) {
        online = (await Promise.all(hosts.map((h) => h.call('online')))).reduce((a, b) => a + b, 0);
        if (online >= nodes.length) break;
        if (performance.now() - started > 180_000) {
          throw new Error(`only ${online}/${nodes.length} nodes online after 180 s`);
        }
        await sleep(250);
      }
      const onlineMs = performance.now() - started;
      ctx.log(`  ${num(online)} online in ${num(onlineMs / 1000, 1)} s; invoking`);
      await server.loopLag(); // reset the server's window
      driver = new Child<typeof handlers>('commands', 'commands driver');
      const report = await driver.call('run', {
        ...{ target, baseUrl: server.baseUrl, token, nodeIds: nodes.map((n) => n.nodeId) },
        ...{ concurrency: shape.concurrency, warmupMs: shape.warmupMs },
        ...{ durationMs: shape.durationMs, callerPollMs: POLL_MS, timeoutMs: 60_000 },
      });
      const serverLoopLag = await server.loopLag();
      const latency = Histogram.from([report.latency]).summary();
      ctx.log(
        `  ${num(report.ok)} ok, ${num(report.failed)} failed: ${num(report.ok / (report.windowMs / 1000), 1)}/s, ` +
          `p50 ${ms(latency.p50Ms)} ms, p99 ${ms(latency.p99Ms)} ms`,
      );
      return { target, nodesOnline: online, onlineMs, driver: report, serverLoopLag };
    } finally {
      await driver?.exit();
      await exitAll(hosts);
    }
  }
}

const rate = (r: TargetRun): number => r.driver.ok / (r.driver.windowMs / 1000);
const latency = (r: TargetRun) => Histogram.from([r.driver.latency]).summary();

const COMMANDS: Column<TargetRun>[] = [
  metric('nodes online', num, (r) => r.nodesOnline, false),
  metric('ok', num, (r) => r.driver.ok, false),
  metric('failed', num, (r) => r.driver.failed, false),
  metric('invocations/s', (v) => num(v, 1), rate),
  metric('round trip p50 ms', ms, (r) => latency(r).p50Ms),
  metric('p99 ms', ms, (r) => latency(r).p99Ms),
  metric('max ms', ms, (r) => latency(r).maxMs),
  metric('server loop p99 ms', ms, (r) => r.serverLoopLag?.p99Ms, false),
];

export const commands: Scenario = {
  name: 'commands',
  title: 'Commands to online SDK nodes: invocations/s and round trip (echo)',
  needs: (quick) => ({ nodes: (quick ? QUICK : FULL).nodes }),
  async run(ctx): Promise<ScenarioResult> {
    const shape = ctx.quick ? QUICK : FULL;
    const issued = await issueParticipantToken(
      ctx.db,
      ctx.fleet.ownerParticipantId,
      'bench commands',
    );
    const tether = await runTarget(ctx, 'tether', shape, issued.token);
    const baseline = await runTarget(ctx, 'baseline', shape, issued.token);
    const t = latency(tether);
    const scaled = ctx.quick ? `--quick: ${num(shape.nodes)} nodes` : undefined;
    const floors: FloorCheck[] = [
      {
        floor: `every invocation to ${num(shape.nodes)} online nodes answered (echo checked), none failed`,
        measured: `${num(tether.driver.ok)} ok, ${num(tether.driver.failed)} failed; ${num(rate(tether), 1)}/s, p99 ${ms(t.p99Ms)} ms`,
        met: tether.driver.failed === 0 && tether.driver.ok > 0 && !tether.serverExit.crashed,
        ...(scaled ? { scaled } : {}),
      },
    ];
    const notes: string[] = [
      `closed loop: ${shape.concurrency} invocations in flight, round-robin over the nodes; ` +
        `${num(shape.durationMs / 1000)} s measured after ${num(shape.warmupMs / 1000)} s warm-up`,
      `baseline: nodes poll every ${POLL_MS} ms, the caller polls for the result every ${POLL_MS} ms`,
    ];
    for (const r of [tether, baseline]) {
      if (r.driver.failed > 0)
        notes.push(`${r.target} failures: ${JSON.stringify(r.driver.failures)}`);
      if (r.serverExit.crashed)
        notes.push(`${r.target} server crashed (code ${r.serverExit.code})`);
    }
    return {
      name: this.name,
      title: this.title,
      parameters: { ...shape, pollMs: POLL_MS, tetherEnv: TETHER_COMMANDS_ENV },
      tables: [
        {
          headers: ['server', ...COMMANDS.map((c) => c.header)],
          rows: compareRows(COMMANDS, [['tether'], ['baseline'], ['ratio T/B']], tether, baseline),
        },
      ],
      notes,
      floors,
      data: { tether, baseline },
    };
  },
};
