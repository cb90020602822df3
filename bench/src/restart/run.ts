/**
 * The orchestrator's side of a restart run (the `restart` scenario), for one server kind:
 *
 *  1. a fresh server; agent hosts (≥ 2 child processes) start the fleet, at most
 *     `connectConcurrency` agents connecting at once; wait until every agent is online (the
 *     cold start, measured; if it never completes, the restart is not run and that is the result);
 *  2. hold, so every agent is in steady state (beating; its backoff counter reset);
 *  3. mark the hosts, SIGTERM the server, wait for it to exit, start a new server process on
 *     the same port and database (the agents only know that URL);
 *  4. from the moment the new process listens, wait until every agent is online again in its
 *     own view *and* in the database's, sampling the new server, PostgreSQL, the agents and the
 *     machine; then observe a little longer for agents dropping again;
 *  5. collect per-agent times from the hosts, against SIGTERM and the new process listening.
 */
import { AgentHostHandle } from '../agents/handle.js';
import type { AgentIdentity, AgentKind, HostReport } from '../agents/protocol.js';
import type { ServerExit, ServerProcess, StartOptions, Target } from '../servers.js';
import { sampleUsage, type UsageWindow } from '../usage-window.js';
import type pg from 'pg';
import { RestartObserver } from './observer.js';
import { attachWave, waitListening } from './probes.js';
import { summarise, summariseColdStartOnly, type Observed, type RestartRun } from './summary.js';

export interface RestartPlan {
  target: Target;
  kind: AgentKind;
  agents: AgentIdentity[];
  /** The session SDK agents attach to (null for raw agents). */
  sessionId: string | null;
  hosts: number;
  /** Cold start: agents connecting at once, at most (across hosts). */
  connectConcurrency: number;
  connectTimeoutMs: number;
  /** Steady state between "all online" and SIGTERM. */
  holdMs: number;
  /** From SIGTERM: how long to wait for every agent to be back. */
  waveTimeoutMs: number;
  /** After everyone is back: watch for agents dropping again. */
  observeMs: number;
  /** Raw agents' beat cadence. */
  heartbeatMs: number;
}

export interface RestartEnvironment {
  startServer(label: string, options?: StartOptions): Promise<ServerProcess>;
  label: string;
  probe: pg.ClientBase;
  postmasterPid: number | null;
  log: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
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
  readonly hosts: AgentHostHandle[];
  server: ServerProcess | null;

  constructor(
    readonly plan: RestartPlan,
    readonly env: RestartEnvironment,
    first: ServerProcess,
  ) {
    this.server = first;
    this.hosts = Array.from({ length: Math.max(2, plan.hosts) }, () => new AgentHostHandle());
  }

  online(): number {
    return this.hosts.reduce((sum, h) => sum + h.status.online, 0);
  }

  back(): number {
    return this.hosts.reduce((sum, h) => sum + h.status.back, 0);
  }

  /** Samples `serverPid`, PostgreSQL, the agent hosts and the machine from now on. */
  sample(serverPid: number) {
    return sampleUsage({
      server: serverPid,
      postmaster: this.env.postmasterPid,
      clients: this.hosts.map((h) => h.pid),
    });
  }

  /** Polls until `done()` holds or the deadline passes; a failed host aborts the wait. */
  async waitUntil(done: () => boolean, deadline: number): Promise<boolean> {
    for (;;) {
      for (const h of this.hosts) h.check();
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
    await Promise.all(this.hosts.map((h) => h.exit()));
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
  rig.hosts.forEach((host, hostIndex) => {
    const mine = plan.agents.map((_, g) => g).filter((g) => g % count === hostIndex);
    host.send({
      type: 'init',
      startAt,
      spec: {
        hostIndex,
        kind: plan.kind,
        baseUrl,
        sessionId: plan.sessionId,
        agents: mine.map((g) => plan.agents[g]!),
        connectConcurrency: perHost,
        heartbeatMs: plan.heartbeatMs,
      },
    });
  });
  await sleep(Math.max(0, startAt - Date.now()));
  const window = await rig.sample(serverPid);
  const all = await rig.waitUntil(() => rig.online() === n, startAt + plan.connectTimeoutMs);
  const usage = await window.stop();
  rig.env.log(`  cold start: ${rig.online()}/${n} online after ${secondsSince(startAt)} s`);
  return { startAt, usage, all };
}

/** Phases 3–4 after the old process exited: a new one on the same port, and the wave. */
async function restartAndWait(
  rig: RestartRig,
  observer: RestartObserver,
  port: number,
  sigtermAt: number,
) {
  const { plan, env } = rig;
  const n = plan.agents.length;
  const spawned: { pid: number | null } = { pid: null };
  const stopProbe = new AbortController();
  const listening = waitListening(port, stopProbe.signal);
  const starting = env
    .startServer(`${env.label}-restarted`, { port, onSpawn: (pid) => (spawned.pid = pid) })
    .catch((error: unknown) => {
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
    env.log(
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
    env.log(
      `  wave: ${rig.back()}/${n} agents back, database ${db}/${n}, ` +
        `${secondsSince(sigtermAt)} s after SIGTERM (ready probe answered at ${ready} s)`,
    );
  } else {
    await starting; // throws why it did not start
  }
  await sleep(plan.observeMs);
  return { listeningAt, readyAt, wave };
}

export async function runRestart(plan: RestartPlan, env: RestartEnvironment): Promise<RestartRun> {
  const n = plan.agents.length;
  const first = await env.startServer(env.label);
  const port = Number(new URL(first.baseUrl).port);
  env.log(`  ${plan.target} (pid ${first.pid}, port ${port}): ${n} ${plan.kind} agents`);
  const rig = new RestartRig(plan, env, first);
  try {
    const connect = await connectFleet(rig, first.baseUrl, first.pid);
    if (!connect.all) {
      env.log(`  restart not run: the fleet never was all online`);
      const reports = await Promise.all(
        rig.hosts.map((h) => h.report({ sigtermAt: Date.now(), listeningAt: null })),
      );
      const server = await rig.shutdown();
      return summariseColdStartOnly(plan, connect, rig.hosts.length, reports, server);
    }

    // 2. Steady state: every agent beating, its backoff counter reset (stable after 10 s).
    const steadyWindow = await rig.sample(first.pid);
    await sleep(plan.holdMs);
    const steady = await steadyWindow.stop();

    // 3. SIGTERM; both views observed from here on.
    const sigtermAt = Date.now();
    for (const host of rig.hosts) host.send({ type: 'mark', at: sigtermAt });
    const observer = new RestartObserver(
      env.probe,
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
      env.log(`  SIGTERM → exit ${secondsSince(sigtermAt)} s`);
      try {
        restarted = await restartAndWait(rig, observer, port, sigtermAt);
      } catch (error) {
        startError = error instanceof Error ? error.message : String(error);
        env.log(`  restart failed: ${startError}`);
      }
    } finally {
      await observer.stop();
    }

    // 5. Per-agent times from the hosts, then everything stopped.
    const listeningAt = restarted?.listeningAt ?? null;
    const reports: HostReport[] = await Promise.all(
      rig.hosts.map((h) => h.report({ sigtermAt, listeningAt })),
    );
    const serverAttaches =
      plan.sessionId !== null ? await attachWave(env.probe, plan.sessionId, sigtermAt) : null;
    const newServer = await rig.shutdown();
    const observed: Observed = {
      target: plan.target,
      kind: plan.kind,
      agents: n,
      connectConcurrency: plan.connectConcurrency,
      startAt: connect.startAt,
      connectUsage: connect.usage,
      steady,
      sigtermAt,
      exitedAt,
      listeningAt,
      readyAt: restarted?.readyAt ?? null,
      oldServer,
      startError,
      wave: restarted?.wave ?? null,
      timeline: observer.timeline,
      sessions: observer.sessions,
      serverAttaches,
      newServer,
    };
    return summarise(observed, rig.hosts.length, reports);
  } finally {
    await rig.shutdown();
  }
}
