/**
 * Server restart with N connected SDK daemons (the same for both servers: attached to a session
 * on Tether, beating only on the baseline): cold start, hold, SIGTERM, a new process, the wave.
 * restart-report.ts sums it up. Phases and parameters: docs/performance.md, "Server restart".
 */
import { connect } from 'node:net';
import { setPriority } from 'node:os';
import type pg from 'pg';
import { BASELINE_TABLE } from '../baseline/schema.js';
import { children, count, exitAll, message, sleep, sum, waitFor } from '../ipc.js';
import { sampleUsage, type UsageWindow } from '../proc.js';
import { num } from '../report.js';
import type { handlers } from '../roles/agents.js';
import { withSession, type BenchContext, type Scenario } from '../scenario.js';
import type { ServerExit, ServerProcess, StartOptions, Target } from '../servers.js';
import { restartReport, summarise } from './restart-report.js';

/** At most this many agents per host process (docs/performance.md, "Agents' cost"). */
const AGENTS_PER_HOST = 1_250;
/** Cold start: agents connecting at once, at most (as `ws-connections` keeps 100 in flight). */
const CONNECT_CONCURRENCY = 100;
/** Adaptive admission as shipped; `BENCH_RESTART_ADMIT=R` adds a fixed cap of R new sessions/s. */
const RESTART_TETHER_ENV = { TETHER_WS_ADMIT_PER_SECOND: process.env.BENCH_RESTART_ADMIT ?? '0' };
/**
 * The agent hosts' nice value (`BENCH_AGENT_NICE`, default 10; 0: same priority as the server):
 * they stand for machines of their own, so on the shared cores they yield to the server and
 * PostgreSQL (docs/performance.md, "Server restart").
 */
const AGENT_NICE = Number.parseInt(process.env.BENCH_AGENT_NICE ?? '10', 10);

function parameters(quick: boolean) {
  // BENCH_RESTART_AGENTS: a smaller fleet for a quicker look (the floor is for 10 000). The hold
  // outlasts the SDK's stableAfterMs (10 s), so every agent's backoff has reset before SIGTERM.
  const requested = Number.parseInt(process.env.BENCH_RESTART_AGENTS ?? '', 10);
  const [agents, connectTimeoutMs, holdMs, waveTimeoutMs, observeMs] = quick
    ? ([1_000, 60_000, 11_000, 60_000, 3_000] as const)
    : ([requested > 0 ? requested : 10_000, 480_000, 20_000, 300_000, 20_000] as const);
  return { agents, connectTimeoutMs, holdMs, waveTimeoutMs, observeMs };
}

/** Resolves with the first instant a TCP connection to the port succeeds (null if aborted). */
async function waitListening(port: number, signal: AbortSignal): Promise<number | null> {
  while (!signal.aborted) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return Date.now();
    await sleep(50);
  }
  return null;
}

/** The database's view of the fleet. */
async function dbView(
  probe: pg.ClientBase,
  target: Target,
  nodeIds: string[],
  since: number | null,
) {
  const tether = target === 'tether';
  const { rows } = await probe.query<{ db: number | null; presence: number | null }>(
    `SELECT count(*) FILTER (WHERE ${tether ? "health_state = 'online' AND " : ''}
                              last_heartbeat_at > to_timestamp($2::float8 / 1000))::int AS db,
            ${tether ? "count(*) FILTER (WHERE health_state = 'online')::int" : 'NULL::int'} AS presence
       FROM ${tether ? 'runtime_node_presence' : BASELINE_TABLE} WHERE node_id = ANY($1)`,
    [nodeIds, since ?? 0],
  );
  return { db: since === null ? null : (rows[0]?.db ?? 0), presence: rows[0]?.presence ?? null };
}

/** What the server's PostgreSQL sessions are doing: `running`, `idle`, …, or their wait event. */
async function sessionStates(probe: pg.ClientBase, target: Target) {
  const { rows } = await probe.query<{ what: string; n: number }>(
    `SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'running')
                 ELSE coalesce(state, 'unknown') END AS what,
            count(*)::int AS n
       FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()
      GROUP BY 1`,
    [target === 'tether' ? 'tether-server' : 'bench-baseline'],
  );
  return rows;
}

/** Tether's own record of the wave: the session's attach events since SIGTERM (ms after it). */
async function attachWave(probe: pg.ClientBase, sessionId: string, sigtermAt: number) {
  const { rows } = await probe.query<{
    count: number;
    firstMs: number | null;
    lastMs: number | null;
  }>(
    `SELECT count(*)::int AS count,
            (extract(epoch FROM min(at)) * 1000 - $2)::float8 AS "firstMs",
            (extract(epoch FROM max(at)) * 1000 - $2)::float8 AS "lastMs"
       FROM fleet_events
      WHERE session_id = $1 AND type = 'runtimenode.attached'
        AND at >= to_timestamp($2::float8 / 1000)`,
    [sessionId, sigtermAt],
  );
  return rows[0] ?? { count: 0, firstMs: null, lastMs: null };
}
export type AttachWave = Awaited<ReturnType<typeof attachWave>>;

/** The fleet of a run (the same for both servers), in host processes of at most 1 250 agents. */
function fleetPlan(ctx: BenchContext) {
  const p = parameters(ctx.quick);
  const { nodes, ownerParticipantId } = ctx.fleet;
  const agents = nodes.slice(0, p.agents).map((node) => ({ ...node, ownerParticipantId }));
  const hosts = Math.max(ctx.generators, Math.ceil(p.agents / AGENTS_PER_HOST));
  return { ...p, agents, hosts, connectConcurrency: CONNECT_CONCURRENCY };
}

/** One restart run, for one server kind (`sessionId`: the session the agents attach to). */
export type RestartPlan = ReturnType<typeof fleetPlan> & {
  target: Target;
  sessionId: string | null;
};

const secondsSince = (from: number, to = Date.now()): string => ((to - from) / 1000).toFixed(1);

/** Starts a `target` server process for the restart (Tether with its admission setting). */
const startServer = (ctx: BenchContext, target: Target, label: string, options?: StartOptions) =>
  ctx.startServer(target, label, {
    ...options,
    ...(target === 'tether' ? { env: RESTART_TETHER_ENV } : {}),
  });

/** The fleet's agent hosts, and the server process currently running (stopped exactly once). */
function makeRig(plan: RestartPlan, ctx: BenchContext, first: ServerProcess) {
  const hosts = children<typeof handlers>('agents', Math.max(2, plan.hosts));
  for (const host of hosts) setPriority(host.pid, AGENT_NICE);
  const rig = {
    ...{ plan, ctx, hosts, n: plan.agents.length, port: Number(new URL(first.baseUrl).port) },
    server: first as ServerProcess | null,
    /** The hosts' latest counts (a busy host answers late: the per-agent times are exact). */
    fleet: { online: 0, back: 0 },
    /** Samples `server`, PostgreSQL, the agent hosts and the machine from now on. */
    sample: (server: number) =>
      sampleUsage({ server, postmaster: ctx.postmasterPid, clients: hosts.map((h) => h.pid) }),
    /** Polls until `done()` holds or the deadline passes; a failed host aborts the wait. */
    waitUntil: (done: () => boolean, deadline: number) =>
      waitFor(
        async () => {
          const status = await Promise.all(hosts.map((h) => h.call('status')));
          for (const k of ['online', 'back'] as const) rig.fleet[k] = sum(status.map((h) => h[k]));
          return done();
        },
        deadline,
        100,
      ),
    async stopServer(): Promise<ServerExit | null> {
      const server = rig.server;
      rig.server = null;
      return server ? server.stop() : null;
    },
    /** Agents first (so they do not storm a stopping server), then the server. */
    async shutdown(): Promise<ServerExit | null> {
      await exitAll(hosts);
      return rig.stopServer();
    },
  };
  return rig;
}
type Rig = ReturnType<typeof makeRig>;

/** Phase 1: every host starts its agents (dealt round-robin), closed loop. */
async function coldStart(rig: Rig, server: ServerProcess) {
  const { plan, hosts, n } = rig;
  const startAt = Date.now() + 1_000;
  const spec = {
    ...{ baseUrl: server.baseUrl, sessionId: plan.sessionId },
    connectConcurrency: Math.max(1, Math.ceil(plan.connectConcurrency / hosts.length)),
  };
  const inits = hosts.map((host, h) => {
    const agents = plan.agents.filter((_, g) => g % hosts.length === h);
    return host.call('init', { ...spec, agents }, startAt);
  });
  await sleep(startAt - Date.now());
  await Promise.all(inits);
  const window = await rig.sample(server.pid);
  const all = await rig.waitUntil(() => rig.fleet.online === n, startAt + plan.connectTimeoutMs);
  const connectUsage = await window.stop();
  rig.ctx.log(`  cold start: ${rig.fleet.online}/${n} online after ${secondsSince(startAt)} s`);
  return { startAt, connectUsage, all };
}
export type ColdStart = Awaited<ReturnType<typeof coldStart>>;

/**
 * Phases 2–4: the hold, SIGTERM, a new process on the same port once the old one exited, and the
 * wave. From SIGTERM on, every 250 ms: the agents' and the database's counts (rows written after
 * the old process's exit), and during the wave what the server's PostgreSQL sessions are doing.
 */
async function restartPhase(rig: Rig, first: ServerProcess) {
  const { plan, ctx, n, port } = rig;
  const steadyWindow = await rig.sample(first.pid);
  await sleep(plan.holdMs);
  const steady = await steadyWindow.stop();
  const sigtermAt = Date.now();
  await Promise.all(rig.hosts.map((host) => host.call('mark', sigtermAt)));

  const nodeIds = plan.agents.map((a) => a.nodeId);
  const timeline: ({ t: number; agentsOnline: number; agentsBack: number } & DbView)[] = [];
  const sessions: Record<string, number> = {};
  const watch = { dbSince: null as number | null, wave: false, running: true };
  const observing = (async () => {
    while (watch.running) {
      // A failed probe query is a gap in the record, not the end of the run.
      const view = await dbView(ctx.probe, plan.target, nodeIds, watch.dbSince).catch(() => ({
        db: null,
        presence: null,
      }));
      const { online: agentsOnline, back: agentsBack } = rig.fleet;
      timeline.push({ t: Date.now() - sigtermAt, agentsOnline, agentsBack, ...view });
      if (watch.wave) {
        for (const { what, n } of await sessionStates(ctx.probe, plan.target).catch(() => [])) {
          count(sessions, what, n);
        }
      }
      await sleep(250);
    }
  })();

  let oldServer: ServerExit;
  let exitedAt: number;
  let listeningAt: number | null = null;
  let readyAt: number | null = null;
  let wave: UsageWindow | null = null;
  let startError: string | null = null;
  try {
    oldServer = (await rig.stopServer())!;
    exitedAt = Date.now();
    watch.dbSince = exitedAt;
    ctx.log(`  SIGTERM → exit ${secondsSince(sigtermAt)} s`);
    const spawned: { pid: number | null } = { pid: null };
    const stopProbe = new AbortController();
    const listening = waitListening(port, stopProbe.signal);
    const starting = startServer(ctx, plan.target, 'restart-restarted', {
      port,
      onSpawn: (pid) => (spawned.pid = pid),
      // The herd may keep its readiness probe waiting: the wave's own deadline is the limit.
      readyWithinMs: sigtermAt + plan.waveTimeoutMs - Date.now(),
    });
    // Not ready in time, or died (its process killed): end the probe; `starting` is awaited below.
    starting.catch(() => stopProbe.abort());
    try {
      listeningAt = await listening;
      const pid = spawned.pid;
      if (listeningAt === null || pid === null) {
        await starting; // throws why it did not start
      } else {
        ctx.log(
          `  new server (pid ${pid}) listening ${secondsSince(sigtermAt, listeningAt)} s after SIGTERM`,
        );
        const window = await rig.sample(pid);
        watch.wave = true;
        try {
          rig.server = await starting;
          readyAt = Date.now();
          const allBack = () => rig.fleet.back === n && timeline.at(-1)?.db === n;
          await rig.waitUntil(allBack, sigtermAt + plan.waveTimeoutMs);
        } finally {
          watch.wave = false;
          wave = await window.stop();
        }
        const ready = readyAt === null ? '–' : secondsSince(sigtermAt, readyAt);
        ctx.log(
          `  wave: ${rig.fleet.back}/${n} agents back, database ${timeline.at(-1)?.db ?? '–'}/${n}, ` +
            `${secondsSince(sigtermAt)} s after SIGTERM (ready probe answered at ${ready} s)`,
        );
      }
      await sleep(plan.observeMs);
    } catch (error) {
      [listeningAt, readyAt, wave] = [null, null, null]; // the restart's instants: none
      startError = message(error);
      ctx.log(`  restart failed: ${startError}`);
    }
  } finally {
    watch.running = false;
    await observing;
  }
  return {
    ...{ steady, sigtermAt, exitedAt, oldServer, startError },
    ...{ listeningAt, readyAt, wave, timeline, sessions },
  };
}
type DbView = Awaited<ReturnType<typeof dbView>>;
export type RestartObserved = Awaited<ReturnType<typeof restartPhase>>;

async function runRestart(plan: RestartPlan, ctx: BenchContext) {
  const first = await startServer(ctx, plan.target, 'restart');
  const rig = makeRig(plan, ctx, first);
  ctx.log(`  ${plan.target} (pid ${first.pid}, port ${rig.port}): ${rig.n} agents`);
  try {
    const cold = await coldStart(rig, first);
    if (!cold.all) ctx.log(`  restart not run: the fleet never was all online`);
    const restart = cold.all ? await restartPhase(rig, first) : null;
    // What every agent saw, from the hosts; then everything stopped.
    const logs = await Promise.all(rig.hosts.map((h) => h.call('log')));
    const serverAttaches =
      restart && plan.sessionId !== null
        ? await attachWave(ctx.probe, plan.sessionId, restart.sigtermAt)
        : null;
    const lastServer = await rig.shutdown();
    return summarise(plan, cold, logs, lastServer, restart && { ...restart, serverAttaches });
  } finally {
    await rig.shutdown();
  }
}

export const restart: Scenario = {
  name: 'restart',
  title: 'Server restart with connected agents (node SDK daemons)',
  needs: (quick) => ({ nodes: parameters(quick).agents }),
  async run(ctx) {
    const { agents, ...plan } = fleetPlan(ctx);
    const tether = await withSession(ctx, 'bench restart', (sessionId) =>
      runRestart({ ...plan, agents, target: 'tether', sessionId }, ctx),
    );
    const baseline = await runRestart(
      { ...plan, agents, target: 'baseline', sessionId: null },
      ctx,
    );
    return {
      parameters: { agents: agents.length, ...plan, agentNice: AGENT_NICE },
      ...restartReport(tether, baseline),
      scaled: `--quick: ${num(agents.length)} agents`,
      data: { tether, baseline },
    };
  },
};
