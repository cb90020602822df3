/**
 * Server restart with N connected agents (issue 6: 10 000 agents all online again ≤ 30 s, connect
 * error rate ≤ 1 %). Tether's agents are real daemons — `@tether/node-client` nodes attached to a
 * session, in ≥ 2 agent-host processes — and the server is restarted the way an operator does
 * it: SIGTERM, wait for the exit, start a new process on the same port and database. See
 * `restart/run.ts` for the flow and what is measured.
 *
 * The baseline has no node protocol (no attach, no session), so the SDK cannot talk to it; its
 * agents are the bench's raw tRPC-wire agents with the SDK's reconnection policy (`Backoff`:
 * the same full jitter, timeouts and cadence), for whom "attached" is the first acknowledged
 * beat. The comparison is therefore "a restart of the same size, clients reconnecting the same
 * way", with Tether doing its real per-connection work (auth, presence binding, attach) and the
 * baseline its minimum (cached auth, one UPSERT).
 */
import { num, mb, ms } from '../report.js';
import { runRestart, type RestartEnvironment } from '../restart/run.js';
import type { RestartRun } from '../restart/summary.js';
import type { Target } from '../servers.js';
import type { AttemptCounts } from '../agents/protocol.js';
import type { UsageWindow } from '../usage-window.js';
import type { BenchContext, FloorCheck, Scenario, ScenarioResult, Table } from './types.js';

const FLOOR_ALL_ONLINE_MS = 30_000;
const FLOOR_ERROR_RATE = 0.01;
const HEARTBEAT_MS = 15_000;
/**
 * At most this many agents per host process, so no host's event loop saturates: an agent that
 * answers the server's keep-alive PING late (2 s) has its socket dropped by the server, which
 * would be the bench's fault, not the server's.
 */
const AGENTS_PER_HOST = 2_500;

interface Parameters {
  agents: number;
  rampMs: number;
  connectTimeoutMs: number;
  holdMs: number;
  waveTimeoutMs: number;
  observeMs: number;
}

function parameters(quick: boolean): Parameters {
  return quick
    ? {
        agents: 1_000,
        // 100 agents/s: a cold start this machine's server keeps up with (at 500/s the burst
        // queues for tens of seconds); the restart is what brings the real herd.
        rampMs: 10_000,
        connectTimeoutMs: 60_000,
        // ≥ the SDK's stableAfterMs (10 s), so every agent's backoff has reset before SIGTERM.
        holdMs: 11_000,
        waveTimeoutMs: 60_000,
        observeMs: 3_000,
      }
    : {
        agents: 10_000,
        rampMs: 100_000,
        connectTimeoutMs: 300_000,
        // Past one heartbeat cadence, so the fleet is beating when the server goes down.
        holdMs: 20_000,
        waveTimeoutMs: 180_000,
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

const seconds = (value: number | null | undefined): string =>
  value === null || value === undefined ? '–' : num(value / 1000, 1);

function topCauses(counts: AttemptCounts, limit = 3): string {
  const entries = Object.entries(counts.causes).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return '';
  return entries
    .slice(0, limit)
    .map(([cause, n]) => `${cause} ×${num(n)}`)
    .join('; ');
}

function usageCells(u: UsageWindow | null): string[] {
  return [
    num(u?.server?.cpuPercent),
    mb(u?.server?.rssMaxBytes),
    num(u?.postgresCpuPercent),
    num(u?.clientsCpuPercent),
    num(u?.othersCpuPercent),
  ];
}

const USAGE_HEADERS = ['srv CPU %', 'srv RSS max MB', 'PG CPU %', 'agents CPU %', 'others CPU %'];

function connectTable(runs: RestartRun[]): Table {
  return {
    headers: [
      'server',
      'agents',
      'hosts',
      'ramp s',
      'all online s',
      'start→online p50 ms',
      'p99 ms',
      'max ms',
      'attempts',
      'failed',
      ...USAGE_HEADERS,
    ],
    rows: runs.map((r) => [
      r.target,
      `${num(r.connect.online)}/${num(r.agents)}`,
      num(r.hosts),
      seconds(r.connect.rampMs),
      seconds(r.connect.durationMs),
      ms(r.connect.startToOnline.p50Ms),
      ms(r.connect.startToOnline.p99Ms),
      ms(r.connect.startToOnline.maxMs),
      num(r.connect.attempts.attempts),
      num(r.connect.attempts.failed),
      ...usageCells(r.connect.usage),
    ]),
  };
}

function steadyTable(runs: RestartRun[]): Table {
  return {
    headers: ['server', 'window s', ...USAGE_HEADERS, 'agents RSS MB'],
    rows: runs.map((r) => [
      r.target,
      num(r.steady.seconds, 1),
      ...usageCells(r.steady),
      mb(r.steady.clientsRssBytes),
    ]),
  };
}

function recoveryTable(runs: RestartRun[]): Table {
  return {
    headers: [
      'server',
      'SIGTERM→exit s',
      '→listening s',
      '→ready probe s',
      '→first back s',
      '→all back (agents) s',
      '→all online (DB) s',
      'recovery p50 s',
      'p95 s',
      'p99 s',
      'max s',
      'listening→back p50 s',
      'p99 s',
      'back',
      'stopped',
      'dropped again',
    ],
    rows: runs.map((r) => {
      const x = r.restart;
      return [
        r.target,
        seconds(x.sigtermToExitMs),
        seconds(x.sigtermToListeningMs),
        seconds(x.sigtermToReadyMs),
        seconds(x.firstBackMs),
        seconds(x.allBackMs),
        seconds(x.dbAllOnlineMs),
        seconds(x.sinceSigterm.p50Ms),
        seconds(x.sinceSigterm.p95Ms),
        seconds(x.sinceSigterm.p99Ms),
        seconds(x.sinceSigterm.maxMs),
        seconds(x.sinceListening.p50Ms),
        seconds(x.sinceListening.p99Ms),
        `${num(x.back)}/${num(r.agents)}`,
        num(x.terminated),
        num(x.disconnectsAfterBack),
      ];
    }),
  };
}

function attemptsTable(runs: RestartRun[]): Table {
  return {
    headers: [
      'server',
      'attempts',
      'per agent',
      'refused (no listener)',
      'reached a server',
      'failed',
      'error rate %',
      'failure causes',
      'wave s',
      ...USAGE_HEADERS,
    ],
    rows: runs.map((r) => {
      const a = r.restart.attempts;
      return [
        r.target,
        num(a.attempts),
        num(a.attempts / r.agents, 1),
        num(a.refused),
        num(a.attempts - a.refused),
        num(a.failed),
        r.restart.errorRate === null ? '–' : num(r.restart.errorRate * 100, 2),
        topCauses(a),
        num(r.restart.wave?.seconds, 1),
        ...usageCells(r.restart.wave),
      ];
    }),
  };
}

function notes(runs: RestartRun[]): string[] {
  const lines = [
    'Times are from SIGTERM to the old server. Listening = the new process accepts TCP ' +
      'connections (50 ms probe); ready probe = its HTTP readiness answered (200 ms polling, ' +
      'late when the server is flooded). "Back" = online again in the agent\'s own view ' +
      '(Tether: attached and online through the SDK; baseline: first beat acknowledged); ' +
      'recovery = SIGTERM → back, per agent. The DB view is polled every 250 ms: Tether = ' +
      'presence rows `online`; baseline = rows written by the new process (it keeps no ' +
      'connection state).',
    'Connection attempts after SIGTERM: refused = ECONNREFUSED at TCP level (no process ' +
      'listened on the port: between the old server closing its listener and the new one ' +
      'opening it); error rate = the other failures / attempts that reached a server. ' +
      'CPU/RSS in the attempts table: from listening until everyone was back in both views.',
  ];
  for (const r of runs) {
    const x = r.restart;
    if (x.startError) lines.push(`${r.target}: restart failed: ${x.startError}`);
    if (r.restart.oldServer.crashed) {
      lines.push(`${r.target}: the first server had already exited before SIGTERM`);
    }
    if (r.newServer?.crashed)
      lines.push(`${r.target}: the restarted server crashed during the run`);
    if (x.back < r.agents) {
      lines.push(
        `${r.target}: ${num(r.agents - x.back)} agent(s) not back within the wait ` +
          `(${num(x.pending)} attempts still in flight)`,
      );
    }
    if (x.terminated > 0) {
      lines.push(
        `${r.target}: ${num(x.terminated)} agent(s) STOPPED: ${JSON.stringify(x.terminations)}`,
      );
    }
    if (x.serverAttaches) {
      const a = x.serverAttaches;
      lines.push(
        `${r.target}: the server recorded ${num(a.count)} re-attaches (runtimenode.attached), ` +
          `${seconds(a.firstMs)} s → ${seconds(a.lastMs)} s after SIGTERM (database clock)`,
      );
    }
    const sampled = Object.values(x.sessions).reduce((a, b) => a + b, 0);
    if (sampled > 0) {
      const shares = Object.entries(x.sessions)
        .sort((a, b) => b[1] - a[1])
        .map(([what, k]) => `${what} ${num((k / sampled) * 100)} %`)
        .join(', ');
      lines.push(`${r.target}: its PostgreSQL sessions during the wave (sampled): ${shares}`);
    }
    if (x.dbMin !== null && r.target === 'tether') {
      lines.push(`${r.target}: lowest presence online count after SIGTERM: ${num(x.dbMin)}`);
    }
    lines.push(
      `${r.target}: beats after SIGTERM: ${num(x.beatsOk)} ok, ${num(x.beatsFailed)} failed` +
        (x.beatsFailed > 0 ? ` (${JSON.stringify(x.beatFailures)})` : '') +
        `; agent hosts RSS ${mb(r.agentRssBytes)} MB at the end`,
    );
  }
  return lines;
}

function floors(t: RestartRun, quick: boolean): FloorCheck[] {
  const x = t.restart;
  const scaled = quick ? { scaled: `--quick: ${num(t.agents)} agents` } : {};
  const allOnline =
    x.allBackMs !== null &&
    x.dbAllOnlineMs !== null &&
    Math.max(x.allBackMs, x.dbAllOnlineMs) <= FLOOR_ALL_ONLINE_MS;
  return [
    {
      floor: `restart with ${num(t.agents)} agents: all online again ≤ 30 s`,
      measured:
        `agents' view ${seconds(x.allBackMs)} s, database ${seconds(x.dbAllOnlineMs)} s ` +
        `after SIGTERM ` +
        `(new server listening at ${seconds(x.sigtermToListeningMs)} s; ` +
        `${num(x.back)}/${num(t.agents)} back; ` +
        `recovery p99 ${seconds(x.sinceSigterm.p99Ms)} s)`,
      met: allOnline && !x.startError,
      ...scaled,
    },
    {
      floor: 'restart: connect error rate ≤ 1 %, no agent stopped',
      measured:
        `${num(x.attempts.failed)}/${num(x.attempts.attempts - x.attempts.refused)} attempts that ` +
        `reached a server failed (${x.errorRate === null ? '–' : num(x.errorRate * 100, 2)} %); ` +
        `${num(x.attempts.refused)} more refused while no server listened; ` +
        `${num(x.terminated)} stopped`,
      met: x.errorRate !== null && x.errorRate <= FLOOR_ERROR_RATE && x.terminated === 0,
      ...scaled,
    },
  ];
}

function environment(ctx: BenchContext, target: Target, label: string): RestartEnvironment {
  return {
    startServer: (name, options) => ctx.startServer(target, name, options),
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
      agents,
      hosts: Math.max(ctx.generators, Math.ceil(p.agents / AGENTS_PER_HOST)),
      rampMs: p.rampMs,
      connectTimeoutMs: p.connectTimeoutMs,
      holdMs: p.holdMs,
      waveTimeoutMs: p.waveTimeoutMs,
      observeMs: p.observeMs,
      heartbeatMs: HEARTBEAT_MS,
    };
    const sessionId = await createSession(ctx);
    let tether: RestartRun;
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
      parameters: { ...p, heartbeatMs: HEARTBEAT_MS, hosts: plan.hosts },
      tables: [connectTable(runs), steadyTable(runs), recoveryTable(runs), attemptsTable(runs)],
      notes: notes(runs),
      floors: floors(tether, ctx.quick),
      data: { tether, baseline },
    };
  },
};
