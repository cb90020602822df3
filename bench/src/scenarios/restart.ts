/**
 * Server restart with N connected agents (target: 10 000 agents all online again ≤ 30 s, connect
 * error rate ≤ 1 %). Tether's agents are real daemons — `@tether/node-client` nodes attached to a
 * session, in ≥ 2 agent-host processes — and the server is restarted the way an operator does
 * it: SIGTERM, wait for the exit, start a new process on the same port and database. See
 * `restart/run.ts` for the flow and what is measured.
 *
 * The baseline has no node protocol (no attach, no session), so the SDK cannot talk to it; its
 * agents are raw tRPC-wire agents with the SDK's reconnection policy (`Backoff`: the same full
 * jitter, timeouts and cadence), for whom "attached" is the first acknowledged beat. The
 * comparison is therefore "a restart of the same size, clients reconnecting the same way", with
 * Tether doing its real per-connection work (auth, presence binding, attach) and the baseline its
 * minimum (a token lookup, one UPSERT).
 */
import { runRestart, type RestartEnvironment } from '../restart/run.js';
import type { Target } from '../servers.js';
import {
  attemptsTable,
  baselineFloors,
  coldStartTable,
  recoveryTable,
  restartFloors,
  restartNotes,
  steadyTable,
} from './restart-report.js';
import type { BenchContext, Scenario, ScenarioResult } from './types.js';

const HEARTBEAT_MS = 15_000;
/**
 * At most this many agents per host process, so no host's event loop saturates: an agent that
 * answers the server's keep-alive PING late (2 s) has its socket dropped by the server, and a
 * host that reads an answer after its agent's deadline counts a failure — the bench's fault, not
 * the server's. 2 500 SDK agents in one process stalled it for 2–5 s in a reconnect wave
 * (docs/performance.md, "Agents' cost"); 1 250 per host halves each host's herd.
 */
const AGENTS_PER_HOST = 1_250;
/**
 * Cold start: agents connecting at once, at most (as `ws-connections` keeps 100 handshakes in
 * flight). An open-loop ramp faster than the server can attach (≈ 100/s on the development
 * machine, less with 10 000 connections to keep) piles up calls past the SDK's 15 s timeout, and
 * the retries keep it from ever converging: the restart, not the setup, is the herd to measure.
 */
const CONNECT_CONCURRENCY = 100;

interface Parameters {
  agents: number;
  connectTimeoutMs: number;
  holdMs: number;
  waveTimeoutMs: number;
  observeMs: number;
}

function restartAgents(): number {
  const requested = Number.parseInt(process.env.BENCH_RESTART_AGENTS ?? '', 10);
  return Number.isInteger(requested) && requested > 0 ? requested : 10_000;
}

function parameters(quick: boolean): Parameters {
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

/** A session owned by the fleet's owner, for the agents to attach to. */
async function createSession(ctx: BenchContext): Promise<string> {
  return ctx.db.tx(async (sql) => {
    const { rows } = await sql.query<{ id: string }>(
      `INSERT INTO sessions (name, created_by) VALUES ('bench restart', $1) RETURNING id`,
      [ctx.fleet.ownerParticipantId],
    );
    const id = rows[0]!.id;
    await sql.query(
      `INSERT INTO session_memberships (session_id, participant_id, role, state)
       VALUES ($1, $2, 'owner', 'active')`,
      [id, ctx.fleet.ownerParticipantId],
    );
    return id;
  });
}

/**
 * The agents stop without detaching (daemons killed, not leaving), so their attachments stay
 * active: close them and archive the session, so the nodes are free for later scenarios
 * (a node has at most one active attachment).
 */
async function closeSession(ctx: BenchContext, sessionId: string): Promise<void> {
  await ctx.db.query(
    `UPDATE runtime_node_attachments SET state = 'offline', updated_at = now()
      WHERE session_id = $1 AND state IN ('registering', 'online', 'degraded')`,
    [sessionId],
  );
  await ctx.db.query(`UPDATE sessions SET state = 'archived' WHERE id = $1`, [sessionId]);
}

/**
 * Admission adapts to what the server can take (docs/performance.md "Admission"): nothing is
 * sized for this machine. `BENCH_RESTART_ADMIT=R` adds the optional fixed rate cap of R new
 * sessions per second (`0`, the default: none), to compare with the fixed limit of before.
 */
const RESTART_TETHER_ENV = {
  TETHER_WS_ADMIT_PER_SECOND: process.env.BENCH_RESTART_ADMIT ?? '0',
};

function environment(ctx: BenchContext, target: Target, label: string): RestartEnvironment {
  return {
    startServer: (name, options) =>
      ctx.startServer(target, name, {
        ...options,
        ...(target === 'tether' ? { env: RESTART_TETHER_ENV } : {}),
      }),
    label,
    probe: ctx.probe,
    postmasterPid: ctx.postmasterPid,
    log: ctx.log,
  };
}

export const restart: Scenario = {
  name: 'restart',
  title: 'Server restart with connected agents (node SDK daemons)',
  nodesNeeded: (quick) => parameters(quick).agents,
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
    const sessionId = await createSession(ctx);
    let tether;
    try {
      tether = await runRestart(
        { ...plan, target: 'tether', kind: 'sdk', sessionId },
        environment(ctx, 'tether', this.name),
      );
    } finally {
      await closeSession(ctx, sessionId);
    }
    const baseline = await runRestart(
      { ...plan, target: 'baseline', kind: 'raw', sessionId: null },
      environment(ctx, 'baseline', this.name),
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
