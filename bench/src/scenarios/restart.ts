/**
 * Server restart with N connected SDK daemons (the same for both servers: attached to a session
 * on Tether, beating only on the baseline): the run, then the agent hosts' per-agent logs merged
 * and set against what the orchestrator observed, and its tables, notes and floor checks. Phases, parameters and what each
 * figure and note means: docs/performance.md, "Server restart".
 */
import { connect } from 'node:net';
import { setPriority } from 'node:os';
import type pg from 'pg';
import { BASELINE_TABLE } from '../baseline/schema.js';
import { countInto, type AgentLog } from '../agent-tracker.js';
import { Histogram } from '../histogram.js';
import { children, count, exitAll, message, sleep, sum, waitFor } from '../ipc.js';
import { sampleUsage, type UsageWindow } from '../proc.js';
import { mb, metric, ms, num, table, type Column } from '../report.js';
import type { handlers } from '../roles/agents.js';
import {
  lines,
  withSession,
  type BenchContext,
  type FloorCheck,
  type Scenario,
  type Table,
} from '../scenario.js';
import type { ServerExit, ServerProcess, StartOptions, Target } from '../servers.js';

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
type AttachWave = Awaited<ReturnType<typeof attachWave>>;

/** The fleet of a run (the same for both servers), in host processes of at most 1 250 agents. */
function fleetPlan(ctx: BenchContext) {
  const p = parameters(ctx.quick);
  const { nodes, ownerParticipantId } = ctx.fleet;
  const agents = nodes.slice(0, p.agents).map((node) => ({ ...node, ownerParticipantId }));
  const hosts = Math.max(ctx.generators, Math.ceil(p.agents / AGENTS_PER_HOST));
  return { ...p, agents, hosts, connectConcurrency: CONNECT_CONCURRENCY };
}

/** One restart run, for one server kind (`sessionId`: the session the agents attach to). */
type RestartPlan = ReturnType<typeof fleetPlan> & { target: Target; sessionId: string | null };

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
type ColdStart = Awaited<ReturnType<typeof coldStart>>;

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
type RestartObserved = Awaited<ReturnType<typeof restartPhase>>;

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
    const runs = [tether, baseline];
    const restarted = runs.filter((r): r is Restarted => r.restart !== null);
    return {
      parameters: { agents: agents.length, ...plan, agentNice: AGENT_NICE },
      tables: [
        perRun(runs, COLD_START),
        ...[STEADY, RECOVERY, ATTEMPTS].map((cols) => perRun(restarted, cols)),
      ],
      notes: [...METHOD_NOTES, ...runs.flatMap(runNotes)],
      floors: restartFloors(tether, baseline),
      scaled: `--quick: ${num(agents.length)} agents`,
      data: { tether, baseline },
    };
  },
};

const known = (values: (number | null)[]): number[] => values.filter((v) => v !== null);
type Maybe = number | null | undefined;
const since = (at: Maybe, ref: Maybe): number | null =>
  at == null || ref == null ? null : at - ref;

function histogram(values: (number | null)[]) {
  const h = new Histogram();
  for (const v of values) if (v !== null) h.recordMs(Math.max(0, v));
  return h.summary();
}

/** Attempts started in [from, to) that ended: refused, deferred, or failed (causes counted). */
function attemptsIn(attempts: [number, string][], from: number, to: number) {
  const causes: Record<string, number> = {};
  const counts = { attempts: 0, refused: 0, deferred: 0, failed: 0, causes };
  for (const [start, outcome] of attempts) {
    if (start < from || start >= to) continue;
    counts.attempts++;
    if (outcome === 'refused' || outcome === 'deferred') counts[outcome]++;
    else if (outcome !== 'ok') {
      counts.failed++;
      countInto(causes, outcome);
    }
  }
  return counts;
}
type Attempts = ReturnType<typeof attemptsIn>;
type Observed = RestartObserved & { serverAttaches: AttachWave | null };

/** Attempts that reached a server and were not deferred: the error rate's denominator. */
const reached = (a: Attempts): number => a.attempts - a.refused - a.deferred;

/** The hosts' logs set against the cold start's and (if it ran) the restart's instants. */
function summarise(
  plan: RestartPlan,
  cold: ColdStart,
  logs: AgentLog[],
  lastServer: ServerExit | null,
  r: Observed | null,
) {
  const n = plan.agents.length;
  const all = (k: 'startAt' | 'firstOnlineAt' | 'lostAt' | 'backAt') => logs.flatMap((l) => l[k]);
  const total = (k: 'pending' | 'disconnectsAfterBack' | 'beatsOk' | 'rssBytes') =>
    sum(logs.map((l) => l[k]));
  const merged = (k: 'disconnectCauses' | 'beatFailures' | 'terminations') => {
    const into: Record<string, number> = {};
    for (const log of logs) for (const [key, v] of Object.entries(log[k])) countInto(into, key, v);
    return into;
  };
  const [firstOnlineAt, lostAt, backAt] = [all('firstOnlineAt'), all('lostAt'), all('backAt')];
  const attempts = logs.flatMap((l) => l.attempts);
  const online = known(firstOnlineAt);
  const terminations = merged('terminations');

  /** The restart phase: times from SIGTERM, per agent and for the fleet. */
  const restartResult = ({ sigtermAt, exitedAt, listeningAt, readyAt, ...o }: Observed) => {
    const back = known(backAt);
    const presence = known(o.timeline.map((p) => p.presence));
    const after = attemptsIn(attempts, sigtermAt, Infinity);
    const beatFailures = merged('beatFailures');
    return {
      sigtermToExitMs: exitedAt - sigtermAt,
      sigtermToListeningMs: since(listeningAt, sigtermAt),
      sigtermToReadyMs: since(readyAt, sigtermAt),
      back: back.length,
      firstBackMs: back.length > 0 ? Math.min(...back) - sigtermAt : null,
      allBackMs: back.length === n ? Math.max(...back) - sigtermAt : null,
      dbAllOnlineMs: o.timeline.find((p) => p.db === n)?.t ?? null,
      presenceMin: presence.length > 0 ? Math.min(...presence) : null,
      lostSinceSigterm: histogram(lostAt.map((at) => since(at, sigtermAt))),
      sinceSigterm: histogram(backAt.map((at) => since(at, sigtermAt))),
      sinceListening: histogram(backAt.map((at) => since(at, listeningAt))),
      attempts: after,
      // Deferred attempts are neither failures nor successes: left out of both sides.
      errorRate: reached(after) > 0 ? after.failed / reached(after) : null,
      ...{ pending: total('pending'), disconnectsAfterBack: total('disconnectsAfterBack') },
      disconnectCauses: merged('disconnectCauses'),
      ...{ beatsOk: total('beatsOk'), beatsFailed: sum(Object.values(beatFailures)), beatFailures },
      ...o, // the old server's exit, why the restart failed, the wave's usage, the views observed
    };
  };

  const startAt = all('startAt');
  return {
    ...{ target: plan.target, agents: n, hosts: logs.length },
    connect: {
      connectConcurrency: plan.connectConcurrency,
      durationMs: online.length === n ? since(Math.max(...online), cold.startAt) : null,
      online: online.length,
      startToOnline: histogram(firstOnlineAt.map((at, i) => since(at, startAt[i]))),
      attempts: attemptsIn(attempts, -Infinity, r?.sigtermAt ?? Infinity),
      usage: cold.connectUsage,
    },
    restart: r ? restartResult(r) : null,
    ...{ terminated: sum(Object.values(terminations)), terminations },
    agentRssBytes: total('rssBytes'),
    /** The agent hosts' event-loop delay after SIGTERM: the worst, and each host's. */
    agentLoopDelay: {
      p99Ms: Math.max(0, ...logs.map((l) => l.loopDelay.p99Ms)),
      maxMs: Math.max(0, ...logs.map((l) => l.loopDelay.maxMs)),
    },
    agentLoopDelays: logs.map((l) => l.loopDelay),
    lastServer,
  };
}

type RestartRun = ReturnType<typeof summarise>;
type Restarted = RestartRun & { restart: NonNullable<RestartRun['restart']> };

const FLOOR_ALL_ONLINE_MS = 30_000;
const FLOOR_ERROR_RATE = 0.01;

const seconds = (ms: Maybe): string => (ms == null ? '–' : num(ms / 1000, 1));
const num1 = (value: Maybe): string => num(value, 1);
const percent = (share: Maybe): string => (share == null ? '–' : num(share * 100, 2));

/** `cause ×n; …`, the most frequent first. */
const byCount = (counts: Record<string, number>, limit = Infinity): string =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([cause, n]) => `${cause} ×${num(n)}`)
    .join('; ');

/** The CPU/RSS columns of a window. */
const usage = <R>(pick: (r: R) => UsageWindow | null | undefined): Column<R>[] => [
  metric('srv CPU %', num, (r) => pick(r)?.server?.cpuPercent),
  metric('srv RSS max MB', mb, (r) => pick(r)?.server?.rssMaxBytes),
  metric('PG CPU %', num, (r) => pick(r)?.postgresCpuPercent),
  metric('agents CPU %', num, (r) => {
    const u = pick(r);
    return u ? sum(u.clientsCpuPercent) : null;
  }),
  metric('others CPU %', num, (r) => pick(r)?.othersCpuPercent),
];

const perRun = <R extends { target: string }>(runs: R[], cols: Column<R>[]): Table =>
  table(
    ['server'],
    cols,
    runs.map((r) => [r.target, ...cols.map((c) => c.cell(r))]),
  );

const COLD_START: Column<RestartRun>[] = [
  { header: 'online', cell: (r) => `${num(r.connect.online)}/${num(r.agents)}` },
  metric('hosts', num, (r) => r.hosts),
  metric('connecting at once', num, (r) => r.connect.connectConcurrency),
  metric('all online s', seconds, (r) => r.connect.durationMs),
  metric('agents/s', num, (r) => {
    const d = r.connect.durationMs;
    return d === null ? null : r.agents / (d / 1000);
  }),
  metric('start→online p50 ms', ms, (r) => r.connect.startToOnline.p50Ms),
  metric('p99 ms', ms, (r) => r.connect.startToOnline.p99Ms),
  metric('max ms', ms, (r) => r.connect.startToOnline.maxMs),
  metric('attempts', num, (r) => r.connect.attempts.attempts),
  metric('refused', num, (r) => r.connect.attempts.refused),
  metric('failed', num, (r) => r.connect.attempts.failed),
  ...usage((r: RestartRun) => r.connect.usage),
];

/** The hold before SIGTERM. */
const STEADY: Column<Restarted>[] = [
  metric('window s', num1, (r) => r.restart.steady.seconds),
  ...usage((r: Restarted) => r.restart.steady),
  metric('agents RSS MB', mb, (r) => r.restart.steady.clientsRssBytes),
];

const RECOVERY: Column<Restarted>[] = [
  metric('SIGTERM→exit s', seconds, (r) => r.restart.sigtermToExitMs),
  metric('→listening s', seconds, (r) => r.restart.sigtermToListeningMs),
  metric('→ready probe s', seconds, (r) => r.restart.sigtermToReadyMs),
  metric('→first back s', seconds, (r) => r.restart.firstBackMs),
  metric('→all back (agents) s', seconds, (r) => r.restart.allBackMs),
  metric('→all online (DB) s', seconds, (r) => r.restart.dbAllOnlineMs),
  metric('recovery p50 s', seconds, (r) => r.restart.sinceSigterm.p50Ms),
  metric('p95 s', seconds, (r) => r.restart.sinceSigterm.p95Ms),
  metric('p99 s', seconds, (r) => r.restart.sinceSigterm.p99Ms),
  metric('max s', seconds, (r) => r.restart.sinceSigterm.maxMs),
  metric('listening→back p50 s', seconds, (r) => r.restart.sinceListening.p50Ms),
  metric('p99 s', seconds, (r) => r.restart.sinceListening.p99Ms),
  { header: 'back', cell: (r) => `${num(r.restart.back)}/${num(r.agents)}` },
  metric('stopped', num, (r) => r.terminated),
  metric('dropped again', num, (r) => r.restart.disconnectsAfterBack),
];

const ATTEMPTS: Column<Restarted>[] = [
  metric('attempts', num, (r) => r.restart.attempts.attempts),
  metric('per agent', num1, (r) => r.restart.attempts.attempts / r.agents),
  metric('refused (no listener)', num, (r) => r.restart.attempts.refused),
  metric('deferred (retry-after)', num, (r) => r.restart.attempts.deferred),
  metric('reached a server, not deferred', num, (r) => reached(r.restart.attempts)),
  metric('failed', num, (r) => r.restart.attempts.failed),
  metric('error rate %', percent, (r) => r.restart.errorRate),
  { header: 'failure causes', cell: (r) => byCount(r.restart.attempts.causes, 3) },
  metric('wave s', num1, (r) => r.restart.wave?.seconds),
  ...usage((r: Restarted) => r.restart.wave),
  metric('agent hosts loop p99 ms (worst)', ms, (r) => r.agentLoopDelay.p99Ms),
  metric('max ms', ms, (r) => r.agentLoopDelay.maxMs),
];

const METHOD_NOTES = [
  'Cold start: agents start as earlier ones come online (at most "connecting at once" not yet ' +
    'online), so the fleet is up before the restart at the pace the server keeps; the restart ' +
    'brings the real herd (every agent on its own backoff).',
  'Times are from SIGTERM to the old server. Listening = the new process accepts TCP ' +
    'connections (50 ms probe); ready probe = its HTTP readiness answered (200 ms polling, late ' +
    'when the server is flooded). "Back" = online again in the agent\'s own view (Tether: ' +
    'resumed in the handshake or re-attached, online through the SDK; baseline: first beat acknowledged); recovery = ' +
    'SIGTERM → back, per agent. The DB view is polled every 250 ms: rows the new process wrote ' +
    '(Tether: presence `online` with a beat or attach since the old process exited; baseline: ' +
    'rows written since then — it keeps no connection state).',
  'Connection attempts after SIGTERM: refused = ECONNREFUSED at TCP level (no process listened ' +
    'on the port: between the old server closing its listener and the new one opening it); ' +
    "deferred = answered 503 with a time to come back (Tether's adaptive admission, " +
    'docs/performance.md "Admission"), which the agent obeys; error rate = the other failures / ' +
    'attempts that reached a server and were not deferred. CPU/RSS in the attempts ' +
    'table: from listening until everyone was back in both views.',
  "Agent hosts' loop delay: each host's own event-loop delay from SIGTERM to its report " +
    "(the client side's error bar: a late host sees, answers and times its agents' events " +
    'late); the attempts table shows the worst host, the notes every host.',
];

function runNotes(r: RestartRun): string[] {
  const t = r.target;
  const x = r.restart;
  const head = lines(
    r.terminated > 0 &&
      `${t}: ${num(r.terminated)} agent(s) STOPPED: ${JSON.stringify(r.terminations)}`,
    r.lastServer?.crashed && `${t}: the server had crashed before it was stopped`,
  );
  if (!x) {
    const causes = byCount(r.connect.attempts.causes, 5);
    return [
      ...head,
      `${t}: restart NOT RUN — only ${num(r.connect.online)}/${num(r.agents)} agents ever came ` +
        `online in the cold start` +
        (causes ? `; its failed attempts: ${causes}` : ''),
    ];
  }
  const a = x.serverAttaches;
  const lost = x.lostSinceSigterm;
  const sampled = sum(Object.values(x.sessions));
  const shares = Object.entries(x.sessions)
    .sort((p, q) => q[1] - p[1])
    .map(([what, k]) => `${what} ${num((k / sampled) * 100)} %`)
    .join(', ');
  const hosts = r.agentLoopDelays
    .map((d, i) => `#${i + 1} ${ms(d.p50Ms)}/${ms(d.p99Ms)}/${ms(d.maxMs)}`)
    .join(', ');
  return [
    ...head,
    ...lines(
      !!x.startError && `${t}: restart failed: ${x.startError}`,
      x.oldServer.crashed && `${t}: the first server had exited before SIGTERM`,
      x.back < r.agents &&
        `${t}: ${num(r.agents - x.back)} agent(s) not back within the wait ` +
          `(${num(x.pending)} attempts still in flight)`,
      a &&
        `${t}: the server recorded ${num(a.count)} re-attaches (runtimenode.attached), ` +
          `${seconds(a.firstMs)} s → ${seconds(a.lastMs)} s after SIGTERM (database clock)`,
      Object.keys(x.disconnectCauses).length > 0 &&
        `${t}: agents lost their connection ${seconds(lost.p50Ms)} s (p50), ` +
          `${seconds(lost.p99Ms)} s (p99), ${seconds(lost.maxMs)} s (max) after SIGTERM; ` +
          `connections lost after SIGTERM, by cause: ${byCount(x.disconnectCauses)}`,
      sampled > 0 && `${t}: its PostgreSQL sessions during the wave (sampled): ${shares}`,
      x.presenceMin !== null &&
        `${t}: lowest count of presence rows \`online\` after SIGTERM: ${num(x.presenceMin)}` +
          (x.presenceMin > 0
            ? ' — rows the old process left online while nobody was connected'
            : ''),
      `${t}: beats after SIGTERM: ${num(x.beatsOk)} ok, ${num(x.beatsFailed)} failed` +
        (x.beatsFailed > 0 ? ` (${JSON.stringify(x.beatFailures)})` : '') +
        `; agent hosts RSS ${mb(r.agentRssBytes)} MB at the end, their event-loop delay ` +
        `after SIGTERM p99 ${ms(r.agentLoopDelay.p99Ms)} ms, max ${ms(r.agentLoopDelay.maxMs)} ms ` +
        `(worst host)`,
      hosts !== '' &&
        `${t}: event-loop delay per agent host after SIGTERM (p50/p99/max ms, ` +
          `${num(Math.ceil(r.agents / r.hosts))} agents each at most): ${hosts}`,
    ),
  ];
}

/** Both views: the later of the agents' "back" and the database's "online". */
function allBack(r: RestartRun): number | null {
  const x = r.restart;
  if (!x || x.allBackMs === null || x.dbAllOnlineMs === null) return null;
  return Math.max(x.allBackMs, x.dbAllOnlineMs);
}

/** The restart's floors, then the comparisons with the baseline (reconnect at fleet scale). */
function restartFloors(t: RestartRun, b: RestartRun): FloorCheck[] {
  const x = t.restart;
  const notRun = `restart not run: ${num(t.connect.online)}/${num(t.agents)} agents online in the cold start`;
  const [tBack, bBack] = [allBack(t), allBack(b)];
  const [tCold, bCold] = [t.connect.durationMs, b.connect.durationMs];
  const ratio = (p: number | null, q: number | null): string =>
    p === null || q === null || q === 0 ? '–' : `${num(p / q, 2)}×`;
  return [
    {
      floor: `restart with ${num(t.agents)} agents: all online again ≤ 30 s`,
      measured: !x
        ? notRun
        : `agents' view ${seconds(x.allBackMs)} s, database ${seconds(x.dbAllOnlineMs)} s ` +
          `after SIGTERM (new server listening at ${seconds(x.sigtermToListeningMs)} s; ` +
          `${num(x.back)}/${num(t.agents)} back; recovery p99 ${seconds(x.sinceSigterm.p99Ms)} s)`,
      met: !!x && tBack !== null && tBack <= FLOOR_ALL_ONLINE_MS && !x.startError,
    },
    {
      floor: 'restart: connect error rate ≤ 1 %, no agent stopped',
      measured: !x
        ? notRun
        : `${num(x.attempts.failed)}/${num(reached(x.attempts))} attempts ` +
          `that reached a server (not deferred) failed (${percent(x.errorRate)} %); ${num(x.attempts.refused)} ` +
          `more refused while no server listened; ${num(x.attempts.deferred)} deferred with a ` +
          `retry time (admission limit); ${num(t.terminated)} stopped`,
      met: !!x && x.errorRate !== null && x.errorRate <= FLOOR_ERROR_RATE && t.terminated === 0,
    },
    {
      floor: `restart with ${num(t.agents)} agents: all back no later than the baseline`,
      measured: `Tether ${seconds(tBack)} s, baseline ${seconds(bBack)} s after SIGTERM (${ratio(tBack, bBack)})`,
      met: tBack !== null && bBack !== null && tBack <= bBack,
    },
    {
      floor: `cold start of ${num(t.agents)} agents: ≤ 2 × the baseline`,
      measured: `Tether ${seconds(tCold)} s, baseline ${seconds(bCold)} s (${ratio(tCold, bCold)})`,
      met: tCold !== null && bCold !== null && tCold <= 2 * bCold,
    },
  ];
}
