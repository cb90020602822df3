/**
 * A restart run's result: the hosts' per-agent reports merged (histograms, counts) and set
 * against what the orchestrator observed (SIGTERM, exit, listening, readiness, the database's
 * count, CPU and memory).
 */
import type { AgentKind, AttemptCounts, HostReport } from '../agents/protocol.js';
import { Histogram, type HistogramData, type LatencySummary } from '../histogram.js';
import type { ServerExit, Target } from '../servers.js';
import type { UsageWindow } from '../usage-window.js';
import type { TimelinePoint } from './observer.js';
import type { AttachWave } from './probes.js';

/** The cold start: the fleet connecting to a fresh server, at most `connectConcurrency` at once. */
export interface ColdStart {
  connectConcurrency: number;
  /** Start instant → every agent online (agents' clocks), null if not all made it. */
  durationMs: number | null;
  online: number;
  /** Per agent: its start → first online. */
  startToOnline: LatencySummary;
  attempts: AttemptCounts;
  usage: UsageWindow;
}

export interface RestartResult {
  oldServer: ServerExit;
  sigtermToExitMs: number;
  /** SIGTERM → the new process accepts TCP connections on the port. */
  sigtermToListeningMs: number | null;
  /** SIGTERM → the new process answered its readiness probe (HTTP, every 200 ms). */
  sigtermToReadyMs: number | null;
  /** Why the new server did not come up, if it did not. */
  startError: string | null;
  lost: number;
  back: number;
  firstBackMs: number | null;
  /** SIGTERM → the last agent online again (agents' view); null if some never came back. */
  allBackMs: number | null;
  /** SIGTERM → the database counts every agent back (null: never within the wait). */
  dbAllOnlineMs: number | null;
  /**
   * Tether: lowest count of presence rows `online` after SIGTERM — 0 when the shutdown released
   * every node it held; the agents' count when it left them `online`.
   */
  presenceMin: number | null;
  /** Per agent: SIGTERM → its connection lost. */
  lostSinceSigterm: LatencySummary;
  /** Per agent: SIGTERM → back. */
  sinceSigterm: LatencySummary;
  /** Per agent: new process listening → back. */
  sinceListening: LatencySummary;
  /** Per agent: its own connection loss → back. */
  downtime: LatencySummary;
  /** Connection attempts started after SIGTERM. */
  attempts: AttemptCounts;
  /** Failed / attempts that reached a server (refused at TCP level and deferred excluded). */
  errorRate: number | null;
  pending: number;
  disconnectsAfterBack: number;
  /** Why established connections were lost after SIGTERM. */
  disconnectCauses: Record<string, number>;
  beatsOk: number;
  beatsFailed: number;
  beatFailures: Record<string, number>;
  /** New process listening → everyone online in both views (or the wait's end). */
  wave: UsageWindow | null;
  /** The server's PostgreSQL sessions during the wave, by state / wait (250 ms samples). */
  sessions: Record<string, number>;
  serverAttaches: AttachWave | null;
  timeline: TimelinePoint[];
}

export interface RestartRun {
  target: Target;
  kind: AgentKind;
  agents: number;
  hosts: number;
  connect: ColdStart;
  /** The hold before SIGTERM (null: the restart was not run). */
  steady: UsageWindow | null;
  /** Null when the cold start never completed (the restart was not run). */
  restart: RestartResult | null;
  /** Agents stopped for good (terminal errors), over the whole run. */
  terminated: number;
  terminations: Record<string, number>;
  agentRssBytes: number;
  /** The agent hosts' worst event-loop delay in the restart phase, ms (p99 and max). */
  agentLoopDelay: { p99Ms: number; maxMs: number };
  /** Each agent host's event-loop delay in the restart phase, ms, in host order. */
  agentLoopDelays: HostReport['loopDelay'][];
  /** How the last server process ended when stopped (a crash shows here). */
  lastServer: ServerExit | null;
}

/** What the orchestrator saw, to set the hosts' reports against. */
export interface Observed {
  target: Target;
  kind: AgentKind;
  agents: number;
  connectConcurrency: number;
  startAt: number;
  connectUsage: UsageWindow;
  steady: UsageWindow;
  sigtermAt: number;
  exitedAt: number;
  listeningAt: number | null;
  readyAt: number | null;
  oldServer: ServerExit;
  startError: string | null;
  wave: UsageWindow | null;
  timeline: TimelinePoint[];
  sessions: Record<string, number>;
  serverAttaches: AttachWave | null;
  newServer: ServerExit | null;
}

export function mergeCounts(parts: AttemptCounts[]): AttemptCounts {
  const merged: AttemptCounts = { attempts: 0, refused: 0, deferred: 0, failed: 0, causes: {} };
  for (const p of parts) {
    merged.attempts += p.attempts;
    merged.refused += p.refused;
    merged.deferred += p.deferred;
    merged.failed += p.failed;
    for (const [cause, n] of Object.entries(p.causes)) {
      merged.causes[cause] = (merged.causes[cause] ?? 0) + n;
    }
  }
  return merged;
}

function mergeRecords(parts: Record<string, number>[]): Record<string, number> {
  return mergeCounts(
    parts.map((causes) => ({ attempts: 0, refused: 0, deferred: 0, failed: 0, causes })),
  ).causes;
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

function extreme(values: (number | null)[], pick: (a: number, b: number) => number) {
  const known = values.filter((v): v is number => v !== null);
  return known.length > 0 ? known.reduce((a, b) => pick(a, b)) : null;
}

const since = (at: number | null, ref: number | null): number | null =>
  at === null || ref === null ? null : at - ref;

function coldStart(
  n: number,
  connectConcurrency: number,
  startAt: number,
  usage: UsageWindow,
  reports: HostReport[],
): ColdStart {
  const c = reports.map((r) => r.connect);
  const online = sum(c.map((x) => x.online));
  const lastOnline = extreme(
    c.map((x) => x.lastOnlineAt),
    Math.max,
  );
  return {
    connectConcurrency,
    durationMs: online === n ? since(lastOnline, startAt) : null,
    online,
    startToOnline: Histogram.from(reports.map((r) => r.connect.startToOnline)).summary(),
    attempts: mergeCounts(c.map((x) => x.attempts)),
    usage,
  };
}

/** Agent-wide facts, whichever phases ran. */
function fleetFacts(reports: HostReport[]) {
  return {
    terminated: sum(reports.map((rep) => rep.terminated)),
    terminations: mergeRecords(reports.map((rep) => rep.terminations)),
    agentRssBytes: sum(reports.map((rep) => rep.rssBytes)),
    agentLoopDelay: {
      p99Ms: Math.max(0, ...reports.map((rep) => rep.loopDelay.p99Ms)),
      maxMs: Math.max(0, ...reports.map((rep) => rep.loopDelay.maxMs)),
    },
    agentLoopDelays: reports.map((rep) => rep.loopDelay),
  };
}

/** The fleet never was all online: the cold start is the whole result. */
export function summariseColdStartOnly(
  plan: { target: Target; kind: AgentKind; agents: unknown[]; connectConcurrency: number },
  connect: { startAt: number; usage: UsageWindow },
  hosts: number,
  reports: HostReport[],
  lastServer: ServerExit | null,
): RestartRun {
  const n = plan.agents.length;
  return {
    target: plan.target,
    kind: plan.kind,
    agents: n,
    hosts,
    connect: coldStart(n, plan.connectConcurrency, connect.startAt, connect.usage, reports),
    steady: null,
    restart: null,
    ...fleetFacts(reports),
    lastServer,
  };
}

export function summarise(o: Observed, hosts: number, reports: HostReport[]): RestartRun {
  const n = o.agents;
  const r = reports.map((rep) => rep.restart);
  const histogram = (pick: (rep: HostReport) => HistogramData): LatencySummary =>
    Histogram.from(reports.map(pick)).summary();
  const back = sum(r.map((x) => x.back));
  const lastBack = extreme(
    r.map((x) => x.lastBackAt),
    Math.max,
  );
  const listeningT = since(o.listeningAt, o.sigtermAt);
  const dbAll = o.timeline.find((p) => p.db === n);
  const presence = o.timeline.map((p) => p.presence).filter((v): v is number => v !== null);
  const attempts = mergeCounts(r.map((x) => x.attempts));
  // Deferred attempts (the server said when to come back) are neither failures nor successes:
  // left out of both sides of the error rate, so they cannot dilute it.
  const reached = attempts.attempts - attempts.refused - attempts.deferred;
  return {
    target: o.target,
    kind: o.kind,
    agents: n,
    hosts,
    connect: coldStart(n, o.connectConcurrency, o.startAt, o.connectUsage, reports),
    steady: o.steady,
    restart: {
      oldServer: o.oldServer,
      sigtermToExitMs: o.exitedAt - o.sigtermAt,
      sigtermToListeningMs: listeningT,
      sigtermToReadyMs: since(o.readyAt, o.sigtermAt),
      startError: o.startError,
      lost: sum(r.map((x) => x.lost)),
      back,
      firstBackMs: since(
        extreme(
          r.map((x) => x.firstBackAt),
          Math.min,
        ),
        o.sigtermAt,
      ),
      allBackMs: back === n ? since(lastBack, o.sigtermAt) : null,
      dbAllOnlineMs: dbAll?.t ?? null,
      presenceMin: presence.length > 0 ? Math.min(...presence) : null,
      lostSinceSigterm: histogram((rep) => rep.restart.lostSinceSigterm),
      sinceSigterm: histogram((rep) => rep.restart.sinceSigterm),
      sinceListening: histogram((rep) => rep.restart.sinceListening),
      downtime: histogram((rep) => rep.restart.downtime),
      attempts,
      errorRate: reached > 0 ? attempts.failed / reached : null,
      pending: sum(r.map((x) => x.pending)),
      disconnectsAfterBack: sum(r.map((x) => x.disconnectsAfterBack)),
      disconnectCauses: mergeRecords(r.map((x) => x.disconnectCauses)),
      beatsOk: sum(r.map((x) => x.beatsOk)),
      beatsFailed: sum(r.map((x) => x.beatsFailed)),
      beatFailures: mergeRecords(r.map((x) => x.beatFailures)),
      wave: o.wave,
      sessions: o.sessions,
      serverAttaches: o.serverAttaches,
      timeline: o.timeline,
    },
    ...fleetFacts(reports),
    lastServer: o.newServer,
  };
}
