/**
 * Server restart with N connected agents (SDK daemons; the baseline: raw agents with the SDK's
 * backoff). See docs/performance.md, "Server restart".
 */
import { connect } from 'node:net';
import type pg from 'pg';
import { BASELINE_TABLE } from '../baseline/schema.js';
import { children, exitAll, sleep, type Child } from '../ipc.js';
import { sampleUsage, type UsageWindow } from '../proc.js';
import type { AgentIdentity, AgentKind, handlers } from '../roles/agents.js';
import type { HostStatus } from '../agent-tracker.js';
import {
  closeSession,
  createSession,
  type BenchContext,
  type Scenario,
  type ScenarioResult,
} from '../scenario.js';
import type { ServerExit, ServerProcess, StartOptions, Target } from '../servers.js';
import {
  attemptsTable,
  baselineFloors,
  coldStartTable,
  recoveryTable,
  restartFloors,
  restartNotes,
  steadyTable,
  summarise,
  type AttachWave,
  type Observed,
  type RestartRun,
  type TimelinePoint,
} from './restart-report.js';

const HEARTBEAT_MS = 15_000;
/**
 * At most this many agents per host process, so no host's event loop saturates: an agent that
 * answers the server's keep-alive PING late (2 s) has its socket dropped by the server, and a host
 * that reads an answer after its agent's deadline counts a failure — the bench's fault, not the
 * server's.
 */
const AGENTS_PER_HOST = 1_250;
/**
 * Cold start: agents connecting at once, at most (as `ws-connections` keeps 100 handshakes in
 * flight).
 */
const CONNECT_CONCURRENCY = 100;

function restartAgents(): number {
  const requested = Number.parseInt(process.env.BENCH_RESTART_AGENTS ?? '', 10);
  return Number.isInteger(requested) && requested > 0 ? requested : 10_000;
}

function parameters(quick: boolean) {
  return quick
    ? {
        agents: 1_000,
        connectTimeoutMs: 60_000,
        // ≥ the SDK's stableAfterMs (10 s), so every agent's backoff has reset before SIGTERM.
        holdMs: 11_000,
        waveTimeoutMs: 60_000,
        observeMs: 3_000,
      }
    : {
        // BENCH_RESTART_AGENTS: a smaller fleet for a quicker look (the floor is for 10 000).
        agents: restartAgents(),
        connectTimeoutMs: 480_000,
        // Past one heartbeat cadence, so the fleet is beating when the server goes down.
        holdMs: 20_000,
        // Well past the floor (30 s), to see when a slower wave does end.
        waveTimeoutMs: 300_000,
        // The first beats after the wave (15 s ± 10 % after each re-attach) land in here.
        observeMs: 20_000,
      };
}

/**
 * Admission adapts to what the server can take (docs/performance.md "Admission"): nothing is sized
 * for this machine. `BENCH_RESTART_ADMIT=R` adds a fixed cap of R new sessions/s.
 */
const RESTART_TETHER_ENV = {
  TETHER_WS_ADMIT_PER_SECOND: process.env.BENCH_RESTART_ADMIT ?? '0',
};

/** Starts a `target` server process for the restart (Tether with its admission setting). */
function starter(ctx: BenchContext, target: Target) {
  return (label: string, options: StartOptions = {}): Promise<ServerProcess> =>
    ctx.startServer(target, label, {
      ...options,
      ...(target === 'tether' ? { env: RESTART_TETHER_ENV } : {}),
    });
}

const LISTEN_PROBE_MS = 50;

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
    await new Promise((resolve) => setTimeout(resolve, LISTEN_PROBE_MS));
  }
  return null;
}

/** The database's view of the fleet. */
async function dbView(
  probe: pg.ClientBase,
  target: Target,
  nodeIds: string[],
  sinceMs: number | null,
): Promise<{ db: number | null; presence: number | null }> {
  const tether = target === 'tether';
  const { rows } = await probe.query<{ db: number | null; presence: number | null }>(
    `SELECT count(*) FILTER (WHERE ${tether ? "health_state = 'online' AND " : ''}
                              last_heartbeat_at > to_timestamp($2::float8 / 1000))::int AS db,
            ${tether ? "count(*) FILTER (WHERE health_state = 'online')::int" : 'NULL::int'} AS presence
       FROM ${tether ? 'runtime_node_presence' : BASELINE_TABLE} WHERE node_id = ANY($1)`,
    [nodeIds, sinceMs ?? 0],
  );
  return { db: sinceMs === null ? null : (rows[0]?.db ?? 0), presence: rows[0]?.presence ?? null };
}

/** The `application_name` of each server's connection pool. */
const POOL_NAMES: Record<Target, string> = { tether: 'tether-server', baseline: 'bench-baseline' };

/**
 * What the server's PostgreSQL sessions are doing right now, one label per session: `running`,
 * `idle`, `idle in transaction` (PostgreSQL waits for the server), or what an active session waits
 * on (`Lock:advisory`, `IO:WalSync`, …).
 */
async function sessionStates(probe: pg.ClientBase, target: Target): Promise<[string, number][]> {
  const { rows } = await probe.query<{ what: string; n: number }>(
    `SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'running')
                 ELSE coalesce(state, 'unknown') END AS what,
            count(*)::int AS n
       FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()
      GROUP BY 1`,
    [POOL_NAMES[target]],
  );
  return rows.map((r) => [r.what, r.n]);
}

/** Tether's own record of the wave: the session's attach events since SIGTERM. */
async function attachWave(
  probe: pg.ClientBase,
  sessionId: string,
  sigtermAt: number,
): Promise<AttachWave> {
  const { rows } = await probe.query<{ n: number; first: number | null; last: number | null }>(
    `SELECT count(*)::int AS n,
            (extract(epoch FROM min(at)) * 1000)::float8 AS first,
            (extract(epoch FROM max(at)) * 1000)::float8 AS last
       FROM fleet_events
      WHERE session_id = $1 AND type = 'runtimenode.attached'
        AND at >= to_timestamp($2::float8 / 1000)`,
    [sessionId, sigtermAt],
  );
  const row = rows[0];
  return {
    count: row?.n ?? 0,
    firstMs: row?.first == null ? null : row.first - sigtermAt,
    lastMs: row?.last == null ? null : row.last - sigtermAt,
  };
}

/** Watches a restart from SIGTERM on, every 250 ms: the agents' and the database's counts, and
 * during the wave what the server's PostgreSQL sessions are doing. */
const POLL_MS = 250;

class RestartObserver {
  readonly timeline: TimelinePoint[] = [];
  /** Session samples by state/wait, summed while `wave` is on. */
  readonly sessions: Record<string, number> = {};
  /** The old process's exit: the database's view counts what was written after it. */
  dbSince: number | null = null;
  /** Sample the server's PostgreSQL sessions. */
  wave = false;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(
    probe: pg.ClientBase,
    target: Target,
    nodeIds: string[],
    sigtermAt: number,
    agents: () => { online: number; back: number },
  ) {
    this.#loop = (async () => {
      while (this.#running) {
        // A failed probe query is a gap in the record, not the end of the run.
        const { db, presence } = await dbView(probe, target, nodeIds, this.dbSince).catch(() => ({
          db: null,
          presence: null,
        }));
        const { online, back } = agents();
        this.timeline.push({
          t: Date.now() - sigtermAt,
          agentsOnline: online,
          agentsBack: back,
          db,
          presence,
        });
        if (this.wave) {
          const states = await sessionStates(probe, target).catch(() => []);
          for (const [what, k] of states) this.sessions[what] = (this.sessions[what] ?? 0) + k;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

/** One restart run, for one server kind (phases in docs/performance.md, "Server restart"). */
type RestartPlan = Omit<ReturnType<typeof parameters>, 'agents'> & {
  target: Target;
  kind: AgentKind;
  agents: AgentIdentity[];
  /** The session SDK agents attach to (null for raw agents). */
  sessionId: string | null;
  hosts: number;
  /** Cold start: agents connecting at once, at most (across hosts). */
  connectConcurrency: number;
  /** Raw agents' beat cadence. */
  heartbeatMs: number;
};

const secondsSince = (from: number, to = Date.now()): string => ((to - from) / 1000).toFixed(1);

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The fleet's agent hosts, and the server process currently running (stopped exactly once). */
class RestartRig {
  readonly hosts: Child<typeof handlers>[];
  server: ServerProcess | null;
  /** The hosts' latest counts (a busy host answers late: the per-agent times are exact). */
  #status: HostStatus[] = [];

  constructor(
    readonly plan: RestartPlan,
    readonly ctx: BenchContext,
    first: ServerProcess,
  ) {
    this.server = first;
    this.hosts = children<typeof handlers>('agents', Math.max(2, plan.hosts));
  }

  online(): number {
    return this.#status.reduce((sum, h) => sum + h.online, 0);
  }

  back(): number {
    return this.#status.reduce((sum, h) => sum + h.back, 0);
  }

  /** Samples `serverPid`, PostgreSQL, the agent hosts and the machine from now on. */
  sample(serverPid: number) {
    return sampleUsage({
      server: serverPid,
      postmaster: this.ctx.postmasterPid,
      clients: this.hosts.map((h) => h.pid),
    });
  }

  /** Polls until `done()` holds or the deadline passes; a failed host aborts the wait. */
  async waitUntil(done: () => boolean, deadline: number): Promise<boolean> {
    for (;;) {
      this.#status = await Promise.all(this.hosts.map((h) => h.call('status')));
      if (done()) return true;
      if (Date.now() >= deadline) return false;
      await sleep(100);
    }
  }

  async stopServer(): Promise<ServerExit | null> {
    const server = this.server;
    this.server = null;
    return server ? server.stop() : null;
  }

  /** Agents first (so they do not storm a stopping server), then the server. */
  async shutdown(): Promise<ServerExit | null> {
    await exitAll(this.hosts);
    return this.stopServer();
  }
}

/** Phase 1: every host starts its agents (dealt round-robin), closed loop. */
async function connectFleet(rig: RestartRig, baseUrl: string, serverPid: number) {
  const { plan } = rig;
  const n = plan.agents.length;
  const count = rig.hosts.length;
  const startAt = Date.now() + 1_000;
  const perHost = Math.max(1, Math.ceil(plan.connectConcurrency / count));
  const inits = rig.hosts.map((host, h) => {
    const spec = {
      ...{ kind: plan.kind, baseUrl, sessionId: plan.sessionId, heartbeatMs: plan.heartbeatMs },
      agents: plan.agents.filter((_, g) => g % count === h),
      connectConcurrency: perHost,
    };
    return host.call('init', spec, startAt);
  });
  await sleep(startAt - Date.now());
  await Promise.all(inits);
  const window = await rig.sample(serverPid);
  const all = await rig.waitUntil(() => rig.online() === n, startAt + plan.connectTimeoutMs);
  const usage = await window.stop();
  rig.ctx.log(`  cold start: ${rig.online()}/${n} online after ${secondsSince(startAt)} s`);
  return { startAt, usage, all };
}

/** Phases 3–4 after the old process exited: a new one on the same port, and the wave. */
async function restartAndWait(
  rig: RestartRig,
  observer: RestartObserver,
  port: number,
  sigtermAt: number,
) {
  const { plan, ctx } = rig;
  const n = plan.agents.length;
  const spawned: { pid: number | null } = { pid: null };
  const stopProbe = new AbortController();
  const listening = waitListening(port, stopProbe.signal);
  const starting = starter(ctx, plan.target)(`restart-restarted`, {
    port,
    onSpawn: (pid) => (spawned.pid = pid),
  }).catch((error: unknown) => {
    // Not ready in time, or died: end the probe, and leave no process behind.
    stopProbe.abort();
    if (spawned.pid !== null) killQuietly(spawned.pid);
    throw error;
  });
  starting.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
  const listeningAt = await listening;
  let wave: UsageWindow | null = null;
  let readyAt: number | null = null;
  const pid = spawned.pid;
  if (listeningAt !== null && pid !== null) {
    ctx.log(
      `  new server (pid ${pid}) listening ${secondsSince(sigtermAt, listeningAt)} s after SIGTERM`,
    );
    const window = await rig.sample(pid);
    observer.wave = true;
    try {
      rig.server = await starting;
      readyAt = Date.now();
      await rig.waitUntil(
        () => rig.back() === n && observer.timeline.at(-1)?.db === n,
        sigtermAt + plan.waveTimeoutMs,
      );
    } finally {
      observer.wave = false;
      wave = await window.stop();
    }
    const db = observer.timeline.at(-1)?.db ?? '–';
    const ready = readyAt === null ? '–' : secondsSince(sigtermAt, readyAt);
    ctx.log(
      `  wave: ${rig.back()}/${n} agents back, database ${db}/${n}, ` +
        `${secondsSince(sigtermAt)} s after SIGTERM (ready probe answered at ${ready} s)`,
    );
  } else {
    await starting; // throws why it did not start
  }
  await sleep(plan.observeMs);
  return { listeningAt, readyAt, wave };
}

async function runRestart(plan: RestartPlan, ctx: BenchContext): Promise<RestartRun> {
  const n = plan.agents.length;
  const first = await starter(ctx, plan.target)('restart');
  const port = Number(new URL(first.baseUrl).port);
  ctx.log(`  ${plan.target} (pid ${first.pid}, port ${port}): ${n} ${plan.kind} agents`);
  const rig = new RestartRig(plan, ctx, first);
  try {
    const connect = await connectFleet(rig, first.baseUrl, first.pid);
    const observed: Observed = {
      ...{ target: plan.target, kind: plan.kind, agents: n },
      ...{ connectConcurrency: plan.connectConcurrency, startAt: connect.startAt },
      connectUsage: connect.usage,
    };
    if (!connect.all) {
      ctx.log(`  restart not run: the fleet never was all online`);
      const logs = await Promise.all(rig.hosts.map((h) => h.call('log')));
      return summarise(observed, logs, await rig.shutdown(), null);
    }

    // 2. Steady state: every agent beating, its backoff counter reset (stable after 10 s).
    const steadyWindow = await rig.sample(first.pid);
    await sleep(plan.holdMs);
    const steady = await steadyWindow.stop();

    // 3. SIGTERM; both views observed from here on.
    const sigtermAt = Date.now();
    await Promise.all(rig.hosts.map((host) => host.call('mark', sigtermAt)));
    const observer = new RestartObserver(
      ctx.probe,
      plan.target,
      plan.agents.map((a) => a.nodeId),
      sigtermAt,
      () => ({ online: rig.online(), back: rig.back() }),
    );
    let oldServer: ServerExit;
    let exitedAt: number;
    let restarted: Awaited<ReturnType<typeof restartAndWait>> | null = null;
    let startError: string | null = null;
    try {
      oldServer = (await rig.stopServer())!;
      exitedAt = Date.now();
      observer.dbSince = exitedAt;
      ctx.log(`  SIGTERM → exit ${secondsSince(sigtermAt)} s`);
      try {
        restarted = await restartAndWait(rig, observer, port, sigtermAt);
      } catch (error) {
        startError = error instanceof Error ? error.message : String(error);
        ctx.log(`  restart failed: ${startError}`);
      }
    } finally {
      await observer.stop();
    }

    // 5. What every agent saw, from the hosts; then everything stopped.
    const logs = await Promise.all(rig.hosts.map((h) => h.call('log')));
    const serverAttaches =
      plan.sessionId !== null ? await attachWave(ctx.probe, plan.sessionId, sigtermAt) : null;
    return summarise(observed, logs, await rig.shutdown(), {
      ...{ steady, sigtermAt, exitedAt, oldServer, startError, serverAttaches },
      listeningAt: restarted?.listeningAt ?? null,
      readyAt: restarted?.readyAt ?? null,
      wave: restarted?.wave ?? null,
      timeline: observer.timeline,
      sessions: observer.sessions,
    });
  } finally {
    await rig.shutdown();
  }
}

export const restart: Scenario = {
  name: 'restart',
  title: 'Server restart with connected agents (node SDK daemons)',
  needs: (quick) => ({ nodes: parameters(quick).agents }),
  async run(ctx): Promise<ScenarioResult> {
    const p = parameters(ctx.quick);
    const agents = ctx.fleet.nodes.slice(0, p.agents).map((node) => ({
      ...node,
      ownerParticipantId: ctx.fleet.ownerParticipantId,
    }));
    const plan = {
      ...p,
      agents,
      hosts: Math.max(ctx.generators, Math.ceil(p.agents / AGENTS_PER_HOST)),
      connectConcurrency: CONNECT_CONCURRENCY,
      heartbeatMs: HEARTBEAT_MS,
    };
    const sessionId = await createSession(ctx, 'bench restart');
    let tether;
    try {
      tether = await runRestart({ ...plan, target: 'tether', kind: 'sdk', sessionId }, ctx);
    } finally {
      await closeSession(ctx, sessionId);
    }
    const baseline = await runRestart(
      { ...plan, target: 'baseline', kind: 'raw', sessionId: null },
      ctx,
    );
    const runs = [tether, baseline];
    return {
      name: this.name,
      title: this.title,
      parameters: {
        ...p,
        hosts: plan.hosts,
        connectConcurrency: CONNECT_CONCURRENCY,
        heartbeatMs: HEARTBEAT_MS,
      },
      tables: [coldStartTable(runs), steadyTable(runs), recoveryTable(runs), attemptsTable(runs)],
      notes: restartNotes(runs),
      floors: [...restartFloors(tether, ctx.quick), ...baselineFloors(tether, baseline, ctx.quick)],
      data: { tether, baseline },
    };
  },
};
