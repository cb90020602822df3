/**
 * The restart scenario's results (scenarios/restart.ts runs it): the agent hosts' per-agent logs
 * merged and set against what the orchestrator observed, then its tables, notes and floor checks.
 * What each figure and note means: docs/performance.md, "Server restart".
 */
import { countInto, type AgentLog } from '../agent-tracker.js';
import { Histogram } from '../histogram.js';
import { sum } from '../ipc.js';
import type { UsageWindow } from '../proc.js';
import { mb, metric, ms, num, table, type Column } from '../report.js';
import { lines, type FloorCheck, type Table } from '../scenario.js';
import type { ServerExit } from '../servers.js';
import type { AttachWave, ColdStart, RestartObserved, RestartPlan } from './restart.js';

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
export function summarise(
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

export type RestartRun = ReturnType<typeof summarise>;
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

/** The scenario's tables (cold start for every run, the rest for runs that restarted), notes, floors. */
export function restartReport(tether: RestartRun, baseline: RestartRun) {
  const runs = [tether, baseline];
  const restarted = runs.filter((r): r is Restarted => r.restart !== null);
  return {
    tables: [
      perRun(runs, COLD_START),
      ...[STEADY, RECOVERY, ATTEMPTS].map((cols) => perRun(restarted, cols)),
    ],
    notes: [...METHOD_NOTES, ...runs.flatMap(runNotes)],
    floors: restartFloors(tether, baseline),
  };
}
