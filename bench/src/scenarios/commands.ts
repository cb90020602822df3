/** Commands: an operator invokes `echo` on online nodes, waits for each result (docs/performance.md). */
import { Histogram } from '../histogram.js';
import { Child, children, exitAll, sum, waitFor } from '../ipc.js';
import { compareRows, LEAD, metric, ms, num, table, type Column } from '../report.js';
import type { handlers } from '../roles/commands.js';
import { withSession, withServer, type BenchContext, type Scenario } from '../scenario.js';
import type { ServerProcess, Target } from '../servers.js';
import { issueParticipantToken } from '../tether-internals.js';

const FULL = { nodes: 1_000, concurrency: 100, warmupMs: 5_000, durationMs: 20_000 };
const QUICK: typeof FULL = { nodes: 100, concurrency: 20, warmupMs: 2_000, durationMs: 8_000 };
/** Nodes poll (and the caller polls) this often in the baseline. */
const POLL_MS = 1_000;
/** One operator invokes hundreds a second: the per-principal mutation limit is raised. */
const TETHER_COMMANDS_ENV = { TETHER_RATE_MUTATIONS_PER_MINUTE: '10000000' };

type TargetRun = Awaited<ReturnType<typeof runTarget>>;

/** `nodes` online in node host processes, then the driver's closed loop against them. */
async function measure(
  ctx: BenchContext,
  server: ServerProcess,
  shape: typeof FULL,
  token: string,
  sessionId: string | null,
) {
  const { target, baseUrl } = server;
  const nodes = ctx.fleet.nodes.slice(0, shape.nodes);
  ctx.log(`  ${num(nodes.length)} nodes`);
  const hosts = children<typeof handlers>('commands', ctx.generators);
  let driver: Child<typeof handlers> | null = null;
  try {
    const per = Math.ceil(nodes.length / ctx.generators);
    const started = performance.now();
    const deadline = Date.now() + 180_000;
    await Promise.all(
      hosts.map((host, h) =>
        host.call('init', {
          ...{ target, baseUrl, ownerParticipantId: ctx.fleet.ownerParticipantId },
          ...{ sessionId, nodes: nodes.slice(h * per, (h + 1) * per) },
          ...{ connectConcurrency: 50, pollIntervalMs: POLL_MS },
        }),
      ),
    );
    let online = 0;
    const allOnline = async () =>
      (online = sum(await Promise.all(hosts.map((h) => h.call('online'))))) >= nodes.length;
    if (!(await waitFor(allOnline, deadline, 250))) {
      throw new Error(`only ${online}/${nodes.length} nodes online after 180 s`);
    }
    const onlineMs = performance.now() - started;
    ctx.log(`  ${num(online)} online in ${num(onlineMs / 1000, 1)} s; invoking`);
    await server.loopLag(); // reset the server's window
    driver = new Child<typeof handlers>('commands', 'commands driver');
    const report = await driver.call('run', {
      ...{ target, baseUrl, token, nodeIds: nodes.map((n) => n.nodeId) },
      ...{ concurrency: shape.concurrency, warmupMs: shape.warmupMs },
      ...{ durationMs: shape.durationMs, callerPollMs: POLL_MS, timeoutMs: 60_000 },
    });
    const serverLoopLag = await server.loopLag();
    const run = { target, nodesOnline: online, onlineMs, driver: report, serverLoopLag };
    ctx.log(
      `  ${num(report.ok)} ok, ${num(report.failed)} failed: ${num(rate(run), 1)}/s, ` +
        `p50 ${ms(latency(run).p50Ms)} ms, p99 ${ms(latency(run).p99Ms)} ms`,
    );
    return run;
  } finally {
    await driver?.exit();
    await exitAll(hosts);
  }
}

/** One server; Tether (its mutation limit raised) with SDK nodes attached to a session of their own. */
const runTarget = (ctx: BenchContext, target: Target, shape: typeof FULL, token: string) =>
  target === 'tether'
    ? withSession(ctx, 'bench commands', (sessionId) =>
        withServer(ctx, target, 'commands', (s) => measure(ctx, s, shape, token, sessionId), {
          env: TETHER_COMMANDS_ENV,
        }),
      )
    : withServer(ctx, target, 'commands', (s) => measure(ctx, s, shape, token, null));

type Run = Pick<TargetRun, 'driver'>;
const rate = (r: Run): number => r.driver.ok / (r.driver.windowMs / 1000);
const latency = (r: Run) => Histogram.from([r.driver.latency]).summary();

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
  async run(ctx) {
    const shape = ctx.quick ? QUICK : FULL;
    const owner = ctx.fleet.ownerParticipantId;
    const { token } = await issueParticipantToken(ctx.db, owner, 'bench commands');
    const tether = await runTarget(ctx, 'tether', shape, token);
    const baseline = await runTarget(ctx, 'baseline', shape, token);
    const { ok, failed } = tether.driver;
    const floor = {
      floor: `every invocation to ${num(shape.nodes)} online nodes answered (echo checked), none failed`,
      measured: `${num(ok)} ok, ${num(failed)} failed; ${num(rate(tether), 1)}/s, p99 ${ms(latency(tether).p99Ms)} ms`,
      met: failed === 0 && ok > 0 && !tether.serverExit.crashed,
    };
    const notes = [
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
      parameters: { ...shape, pollMs: POLL_MS, tetherEnv: TETHER_COMMANDS_ENV },
      tables: [table(['server'], COMMANDS, compareRows(COMMANDS, LEAD, tether, baseline))],
      notes,
      floors: [floor],
      scaled: `--quick: ${num(shape.nodes)} nodes`,
      data: { tether, baseline },
    };
  },
};
