/**
 * The `restart` scenario's result: the agent hosts' per-agent reports merged (histograms, counts)
 * and set against what the orchestrator observed (SIGTERM, exit, listening, readiness, the
 * database's count, CPU and memory); then its tables, notes and floor checks.
 */
import { countInto, DEFERRED, OK, REFUSED, type AgentLog } from '../agent-tracker.js';
import { Histogram, type LatencySummary } from '../histogram.js';
import type { UsageWindow } from '../proc.js';
import { mb, ms, num } from '../report.js';
import type { AgentKind } from '../roles/agents.js';
import { columns, type FloorCheck, type Table } from '../scenario.js';
import type { ServerExit, Target } from '../servers.js';

export interface TimelinePoint {
  /** Milliseconds since SIGTERM. */
  t: number;
  agentsOnline: number;
  agentsBack: number;
  /** Agents back in the database's view (null until the old process has exited: `dbBack`). */
  db: number | null;
  /** Tether's presence rows `online`, stale ones included (`presenceOnline`). */
  presence: number | null;
}

export interface AttachWave {
  count: number;
  /** First and last `runtimenode.attached` event, ms after SIGTERM (database clock). */
  firstMs: number | null;
  lastMs: number | null;
}

/** What the orchestrator saw of the cold start, to set the hosts' logs against. */
export interface Observed {
  target: Target;
  kind: AgentKind;
  agents: number;
  connectConcurrency: number;
  startAt: number;
  connectUsage: UsageWindow;
}

/** …and of the restart. */
export interface RestartObserved {
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
}

const since = (at: number | null | undefined, ref: number | null | undefined): number | null =>
  at === null || at === undefined || ref === null || ref === undefined ? null : at - ref;

/**
 * Connection attempts started in [from, to) that ended: refused at TCP level (no listener),
 * deferred (admission's 503 with a time to come back: not a failure), or failed after reaching a
 * server, its causes counted (transport message, close code or Tether error code).
 */
function attemptsIn(attempts: [number, string][], from: number, to: number) {
  const causes: Record<string, number> = {};
  const counts = { attempts: 0, refused: 0, deferred: 0, failed: 0, causes };
  for (const [start, outcome] of attempts) {
    if (start < from || start >= to) continue;
    counts.attempts++;
    if (outcome === REFUSED) counts.refused++;
    else if (outcome === DEFERRED) counts.deferred++;
    else if (outcome !== OK) {
      counts.failed++;
      countInto(counts.causes, outcome);
    }
  }
  return counts;
}

/** Every host's log gathered: per-agent instants concatenated, counts summed. */
function gather(logs: AgentLog[]) {
  const all = <T>(pick: (log: AgentLog) => T[]): T[] => logs.flatMap(pick);
  const total = (pick: (log: AgentLog) => number): number =>
    logs.reduce((sum, log) => sum + pick(log), 0);
  const merged = (pick: (log: AgentLog) => Record<string, number>): Record<string, number> => {
    const into: Record<string, number> = {};
    for (const log of logs) for (const [k, v] of Object.entries(pick(log))) countInto(into, k, v);
    return into;
  };
  return {
    ...{ startAt: all((l) => l.startAt), firstOnlineAt: all((l) => l.firstOnlineAt) },
    ...{ lostAt: all((l) => l.lostAt), backAt: all((l) => l.backAt) },
    attempts: all((l) => l.attempts),
    ...{
      pending: total((l) => l.pending),
      disconnectsAfterBack: total((l) => l.disconnectsAfterBack),
    },
    ...{ beatsOk: total((l) => l.beatsOk), beatsFailed: total((l) => l.beatsFailed) },
    ...{ terminated: total((l) => l.terminated), rssBytes: total((l) => l.rssBytes) },
    disconnectCauses: merged((l) => l.disconnectCauses),
    beatFailures: merged((l) => l.beatFailures),
    terminations: merged((l) => l.terminations),
  };
}

const histogram = (values: (number | null)[]): LatencySummary => {
  const h = new Histogram();
  for (const v of values) if (v !== null) h.recordMs(Math.max(0, v));
  return h.summary();
};

const known = (values: (number | null)[]): number[] => values.filter((v) => v !== null);

/** The restart phase: times from SIGTERM, per agent and for the fleet. */
function restartResult(n: number, g: ReturnType<typeof gather>, r: RestartObserved) {
  const sigterm = r.sigtermAt;
  const back = known(g.backAt);
  const presence = known(r.timeline.map((p) => p.presence));
  const attempts = attemptsIn(g.attempts, sigterm, Infinity);
  // Deferred attempts (the server said when to come back) are neither failures nor successes:
  // left out of both sides of the error rate, so they cannot dilute it.
  const reached = attempts.attempts - attempts.refused - attempts.deferred;
  return {
    ...{ oldServer: r.oldServer, sigtermToExitMs: r.exitedAt - sigterm },
    /** SIGTERM → the new process accepts TCP connections; answered its readiness probe. */
    sigtermToListeningMs: since(r.listeningAt, sigterm),
    sigtermToReadyMs: since(r.readyAt, sigterm),
    startError: r.startError,
    ...{ lost: known(g.lostAt).length, back: back.length },
    firstBackMs: back.length > 0 ? Math.min(...back) - sigterm : null,
    /** The last agent online again (agents' view); the database counts all back (null: never). */
    allBackMs: back.length === n ? Math.max(...back) - sigterm : null,
    dbAllOnlineMs: r.timeline.find((p) => p.db === n)?.t ?? null,
    /** Tether: lowest count of presence rows `online` after SIGTERM (0: the shutdown released all). */
    presenceMin: presence.length > 0 ? Math.min(...presence) : null,
    /** Per agent: SIGTERM → connection lost; SIGTERM → back; listening → back; own loss → back. */
    lostSinceSigterm: histogram(g.lostAt.map((at) => since(at, sigterm))),
    sinceSigterm: histogram(g.backAt.map((at) => since(at, sigterm))),
    sinceListening: histogram(g.backAt.map((at) => since(at, r.listeningAt))),
    downtime: histogram(g.backAt.map((at, i) => since(at, g.lostAt[i]))),
    attempts,
    errorRate: reached > 0 ? attempts.failed / reached : null,
    ...{ pending: g.pending, disconnectsAfterBack: g.disconnectsAfterBack },
    ...{ disconnectCauses: g.disconnectCauses, beatsOk: g.beatsOk, beatsFailed: g.beatsFailed },
    beatFailures: g.beatFailures,
    /** New process listening → everyone online in both views; PostgreSQL sessions meanwhile. */
    ...{ wave: r.wave, sessions: r.sessions, serverAttaches: r.serverAttaches },
    timeline: r.timeline,
  };
}

/** The hosts' logs set against the cold start's and (if it ran) the restart's instants. */
export function summarise(
  o: Observed,
  logs: AgentLog[],
  lastServer: ServerExit | null,
  r: RestartObserved | null,
) {
  const n = o.agents;
  const g = gather(logs);
  const online = known(g.firstOnlineAt);
  return {
    ...{ target: o.target, kind: o.kind, agents: n, hosts: logs.length },
    connect: {
      connectConcurrency: o.connectConcurrency,
      /** Start instant → every agent online (agents' clocks), null if not all made it. */
      durationMs: online.length === n ? since(Math.max(...online), o.startAt) : null,
      online: online.length,
      startToOnline: histogram(g.firstOnlineAt.map((at, i) => since(at, g.startAt[i]))),
      attempts: attemptsIn(g.attempts, -Infinity, r?.sigtermAt ?? Infinity),
      usage: o.connectUsage,
    },
    /** The hold before SIGTERM, and the restart (null: not run, the cold start never completed). */
    steady: r?.steady ?? null,
    restart: r ? restartResult(n, g, r) : null,
    ...{ terminated: g.terminated, terminations: g.terminations, agentRssBytes: g.rssBytes },
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
type RestartResult = ReturnType<typeof restartResult>;

type AttemptCounts = ReturnType<typeof attemptsIn>;

const FLOOR_ALL_ONLINE_MS = 30_000;
const FLOOR_ERROR_RATE = 0.01;

const seconds = (value: number | null | undefined): string =>
  value === null || value === undefined ? '–' : num(value / 1000, 1);

const percent = (share: number | null): string => (share === null ? '–' : num(share * 100, 2));

function topCauses(counts: AttemptCounts, limit = 3): string {
  return Object.entries(counts.causes)
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([cause, n]) => `${cause} ×${num(n)}`)
    .join('; ');
}

const USAGE_HEADERS = ['srv CPU %', 'srv RSS max MB', 'PG CPU %', 'agents CPU %', 'others CPU %'];

function usageCells(u: UsageWindow | null): string[] {
  return [
    num(u?.server?.cpuPercent),
    mb(u?.server?.rssMaxBytes),
    num(u?.postgresCpuPercent),
    num(u ? u.clientsCpuPercent.reduce((a, b) => a + b, 0) : null),
    num(u?.othersCpuPercent),
  ];
}

function withRestart(runs: RestartRun[]): (RestartRun & { restart: RestartResult })[] {
  return runs.filter((r): r is RestartRun & { restart: RestartResult } => r.restart !== null);
}

export function coldStartTable(runs: RestartRun[]): Table {
  return {
    headers: [
      ...columns(
        'server|online|hosts|connecting at once|all online s|agents/s|start→online p50 ms|p99 ms|max ms|attempts|refused|failed',
      ),
      ...USAGE_HEADERS,
    ],
    rows: runs.map((r) => {
      const c = r.connect;
      return [
        r.target,
        `${num(c.online)}/${num(r.agents)}`,
        num(r.hosts),
        num(c.connectConcurrency),
        seconds(c.durationMs),
        c.durationMs === null ? '–' : num(r.agents / (c.durationMs / 1000)),
        ms(c.startToOnline.p50Ms),
        ms(c.startToOnline.p99Ms),
        ms(c.startToOnline.maxMs),
        num(c.attempts.attempts),
        num(c.attempts.refused),
        num(c.attempts.failed),
        ...usageCells(c.usage),
      ];
    }),
  };
}

export function steadyTable(runs: RestartRun[]): Table {
  return {
    headers: ['server', 'window s', ...USAGE_HEADERS, 'agents RSS MB'],
    rows: runs.flatMap((r) =>
      r.steady
        ? [
            [
              r.target,
              num(r.steady.seconds, 1),
              ...usageCells(r.steady),
              mb(r.steady.clientsRssBytes),
            ],
          ]
        : [],
    ),
  };
}

export function recoveryTable(runs: RestartRun[]): Table {
  return {
    headers: columns(
      'server|SIGTERM→exit s|→listening s|→ready probe s|→first back s|→all back (agents) s|→all online (DB) s|recovery p50 s|p95 s|p99 s|max s|listening→back p50 s|p99 s|back|stopped|dropped again',
    ),
    rows: withRestart(runs).map((r) => {
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
        num(r.terminated),
        num(x.disconnectsAfterBack),
      ];
    }),
  };
}

export function attemptsTable(runs: RestartRun[]): Table {
  return {
    headers: [
      ...columns(
        'server|attempts|per agent|refused (no listener)|deferred (retry-after)|reached a server, not deferred|failed|error rate %|failure causes|wave s',
      ),
      ...USAGE_HEADERS,
      ...columns('agent hosts loop p99 ms (worst)|max ms'),
    ],
    rows: withRestart(runs).map((r) => {
      const a = r.restart.attempts;
      return [
        r.target,
        num(a.attempts),
        num(a.attempts / r.agents, 1),
        num(a.refused),
        num(a.deferred),
        num(a.attempts - a.refused - a.deferred),
        num(a.failed),
        percent(r.restart.errorRate),
        topCauses(a),
        num(r.restart.wave?.seconds, 1),
        ...usageCells(r.restart.wave),
        ms(r.agentLoopDelay.p99Ms),
        ms(r.agentLoopDelay.maxMs),
      ];
    }),
  };
}

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

function sessionShares(sessions: Record<string, number>): string | null {
  const sampled = Object.values(sessions).reduce((a, b) => a + b, 0);
  if (sampled === 0) return null;
  return Object.entries(sessions)
    .sort((a, b) => b[1] - a[1])
    .map(([what, k]) => `${what} ${num((k / sampled) * 100)} %`)
    .join(', ');
}

function runNotes(r: RestartRun): string[] {
  const lines: string[] = [];
  const t = r.target;
  if (r.terminated > 0) {
    lines.push(`${t}: ${num(r.terminated)} agent(s) STOPPED: ${JSON.stringify(r.terminations)}`);
  }
  if (r.lastServer?.crashed) lines.push(`${t}: the server had crashed before it was stopped`);
  const x = r.restart;
  if (!x) {
    const causes = topCauses(r.connect.attempts, 5);
    lines.push(
      `${t}: restart NOT RUN — only ${num(r.connect.online)}/${num(r.agents)} agents ever came ` +
        `online in the cold start` +
        (causes ? `; its failed attempts: ${causes}` : ''),
    );
    return lines;
  }
  if (x.startError) lines.push(`${t}: restart failed: ${x.startError}`);
  if (x.oldServer.crashed) lines.push(`${t}: the first server had exited before SIGTERM`);
  if (x.back < r.agents) {
    lines.push(
      `${t}: ${num(r.agents - x.back)} agent(s) not back within the wait ` +
        `(${num(x.pending)} attempts still in flight)`,
    );
  }
  if (x.serverAttaches) {
    const a = x.serverAttaches;
    lines.push(
      `${t}: the server recorded ${num(a.count)} re-attaches (runtimenode.attached), ` +
        `${seconds(a.firstMs)} s → ${seconds(a.lastMs)} s after SIGTERM (database clock)`,
    );
  }
  const causes = Object.entries(x.disconnectCauses).sort((a, b) => b[1] - a[1]);
  if (causes.length > 0) {
    const list = causes.map(([cause, k]) => `${cause} ×${num(k)}`).join('; ');
    const lost = x.lostSinceSigterm;
    lines.push(
      `${t}: agents lost their connection ${seconds(lost.p50Ms)} s (p50), ` +
        `${seconds(lost.p99Ms)} s (p99), ${seconds(lost.maxMs)} s (max) after SIGTERM; ` +
        `connections lost after SIGTERM, by cause: ${list}`,
    );
  }
  const shares = sessionShares(x.sessions);
  if (shares) lines.push(`${t}: its PostgreSQL sessions during the wave (sampled): ${shares}`);
  if (x.presenceMin !== null) {
    lines.push(
      `${t}: lowest count of presence rows \`online\` after SIGTERM: ${num(x.presenceMin)}` +
        (x.presenceMin > 0 ? ' — rows the old process left online while nobody was connected' : ''),
    );
  }
  lines.push(
    `${t}: beats after SIGTERM: ${num(x.beatsOk)} ok, ${num(x.beatsFailed)} failed` +
      (x.beatsFailed > 0 ? ` (${JSON.stringify(x.beatFailures)})` : '') +
      `; agent hosts RSS ${mb(r.agentRssBytes)} MB at the end, their event-loop delay ` +
      `after SIGTERM p99 ${ms(r.agentLoopDelay.p99Ms)} ms, max ${ms(r.agentLoopDelay.maxMs)} ms ` +
      `(worst host)`,
  );
  if (r.agentLoopDelays.length > 0) {
    const hosts = r.agentLoopDelays
      .map((d, i) => `#${i + 1} ${ms(d.p50Ms)}/${ms(d.p99Ms)}/${ms(d.maxMs)}`)
      .join(', ');
    lines.push(
      `${t}: event-loop delay per agent host after SIGTERM (p50/p99/max ms, ` +
        `${num(Math.ceil(r.agents / r.hosts))} agents each at most): ${hosts}`,
    );
  }
  return lines;
}

export function restartNotes(runs: RestartRun[]): string[] {
  return [...METHOD_NOTES, ...runs.flatMap(runNotes)];
}

export function restartFloors(t: RestartRun, quick: boolean): FloorCheck[] {
  const scaled = quick ? { scaled: `--quick: ${num(t.agents)} agents` } : {};
  const x = t.restart;
  if (!x) {
    const measured =
      `restart not run: ${num(t.connect.online)}/${num(t.agents)} agents online in the ` +
      `cold start`;
    return [
      { floor: `restart with ${num(t.agents)} agents: all online again ≤ 30 s`, measured },
      { floor: 'restart: connect error rate ≤ 1 %, no agent stopped', measured },
    ].map((f) => ({ ...f, met: false, ...scaled }));
  }
  const allOnline =
    x.allBackMs !== null &&
    x.dbAllOnlineMs !== null &&
    Math.max(x.allBackMs, x.dbAllOnlineMs) <= FLOOR_ALL_ONLINE_MS;
  return [
    {
      floor: `restart with ${num(t.agents)} agents: all online again ≤ 30 s`,
      measured:
        `agents' view ${seconds(x.allBackMs)} s, database ${seconds(x.dbAllOnlineMs)} s ` +
        `after SIGTERM (new server listening at ${seconds(x.sigtermToListeningMs)} s; ` +
        `${num(x.back)}/${num(t.agents)} back; recovery p99 ${seconds(x.sinceSigterm.p99Ms)} s)`,
      met: allOnline && !x.startError,
      ...scaled,
    },
    {
      floor: 'restart: connect error rate ≤ 1 %, no agent stopped',
      measured:
        `${num(x.attempts.failed)}/${num(x.attempts.attempts - x.attempts.refused - x.attempts.deferred)} attempts ` +
        `that reached a server (not deferred) failed (${percent(x.errorRate)} %); ${num(x.attempts.refused)} ` +
        `more refused while no server listened; ${num(x.attempts.deferred)} deferred with a ` +
        `retry time (admission limit); ${num(t.terminated)} stopped`,
      met: x.errorRate !== null && x.errorRate <= FLOOR_ERROR_RATE && t.terminated === 0,
      ...scaled,
    },
  ];
}

/** Both views: the later of the agents' "back" and the database's "online". */
function allBack(x: RestartResult): number | null {
  return x.allBackMs === null || x.dbAllOnlineMs === null
    ? null
    : Math.max(x.allBackMs, x.dbAllOnlineMs);
}

/**
 * The comparisons with the baseline (reconnect at fleet scale): all back no later than the baseline
 * after the restart, and a cold start at most twice the baseline's.
 */
export function baselineFloors(t: RestartRun, b: RestartRun | null, quick: boolean): FloorCheck[] {
  const scaled = quick ? { scaled: `--quick: ${num(t.agents)} agents` } : {};
  const tBack = t.restart ? allBack(t.restart) : null;
  const bBack = b?.restart ? allBack(b.restart) : null;
  const tCold = t.connect.durationMs;
  const bCold = b?.connect.durationMs ?? null;
  const ratio = (x: number | null, y: number | null): string =>
    x === null || y === null || y === 0 ? '–' : `${num(x / y, 2)}×`;
  return [
    {
      floor: `restart with ${num(t.agents)} agents: all back no later than the baseline`,
      measured: `Tether ${seconds(tBack)} s, baseline ${seconds(bBack)} s after SIGTERM (${ratio(tBack, bBack)})`,
      met: tBack !== null && bBack !== null && tBack <= bBack,
      ...scaled,
    },
    {
      floor: `cold start of ${num(t.agents)} agents: ≤ 2 × the baseline`,
      measured: `Tether ${seconds(tCold)} s, baseline ${seconds(bCold)} s (${ratio(tCold, bCold)})`,
      met: tCold !== null && bCold !== null && tCold <= 2 * bCold,
      ...scaled,
    },
  ];
}
