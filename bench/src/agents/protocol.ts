/**
 * Messages between the orchestrator and its agent-host child processes (Node IPC), for the
 * `restart` scenario. An agent host runs a slice of the fleet as long-lived daemons that
 * reconnect on their own — real `@tether/node-client` nodes against Tether, or raw tRPC-wire
 * agents with the SDK's backoff against the baseline — and reports what each agent saw.
 *
 *   orchestrator                         agent host
 *   init {spec, startAt}         ───▶    from startAt, starts agents as earlier ones come online
 *                                        (at most `connectConcurrency` not yet online at once)
 *                                ◀───    status {online, back, …}       (every 250 ms)
 *   mark {at}                    ───▶    the restart phase begins (SIGTERM follows at once)
 *   report {refs}                ───▶    per-agent times turned into histograms against refs
 *                                ◀───    report
 *   exit                         ───▶    stops the agents (no detach), exits 0
 *
 * Times are epoch milliseconds; every process runs on the same machine, so they share one clock.
 */
import type { HistogramData } from '../histogram.js';

/** What an SDK node's credentials need (`NodeCredentials` minus the URL). */
export interface AgentIdentity {
  nodeId: string;
  token: string;
  ownerParticipantId: string;
}

/** `sdk`: `createTetherNode` daemons (Tether); `raw`: tRPC wire + the SDK's backoff (baseline). */
export type AgentKind = 'sdk' | 'raw';

export interface HostSpec {
  hostIndex: number;
  kind: AgentKind;
  /** http://host:port of the server; it keeps its port across the restart. */
  baseUrl: string;
  /** The session SDK agents attach to on every (re)connect (null for raw agents). */
  sessionId: string | null;
  agents: AgentIdentity[];
  /**
   * Agents started but never online yet, at most (this host's share of the fleet's cold-start
   * concurrency): the next one starts when one comes online.
   */
  connectConcurrency: number;
  /** Raw agents' beat cadence; SDK agents beat at the cadence the server advertises. */
  heartbeatMs: number;
}

/** Reference instants of the restart, known to the orchestrator only afterwards. */
export interface RestartRefs {
  sigtermAt: number;
  /** The new process accepted a TCP connection on the port (null: it never did). */
  listeningAt: number | null;
}

export type ToHost =
  | { type: 'init'; spec: HostSpec; startAt: number }
  | { type: 'mark'; at: number }
  | { type: 'report'; refs: RestartRefs }
  | { type: 'exit' };

export interface HostStatus {
  /** Agents online now. */
  online: number;
  /** Agents online again after losing their connection in the restart phase. */
  back: number;
  /** Agents that stopped for good (terminal error): must stay 0. */
  terminated: number;
}

/** Connection attempts that ended (attached/acknowledged, or failed) in one phase. */
export interface AttemptCounts {
  attempts: number;
  /** Refused at TCP level (ECONNREFUSED): no process listened on the port. */
  refused: number;
  /**
   * Answered by the server with a time to come back (Tether's admission limit: 503 with
   * `retryAfterMs`): flow control the agent obeys, counted apart from failures.
   */
  deferred: number;
  /** Failed otherwise, after reaching a server (timeouts, closes, 503, error answers). */
  failed: number;
  /** Those failures' causes (transport message, close code or Tether error code), counted. */
  causes: Record<string, number>;
}

export interface ConnectPhaseReport {
  /** Agents online at least once. */
  online: number;
  firstOnlineAt: number | null;
  lastOnlineAt: number | null;
  /** Per agent: its start → first online. */
  startToOnline: HistogramData;
  attempts: AttemptCounts;
}

export interface RestartPhaseReport {
  /** Agents that lost their connection after the mark. */
  lost: number;
  /** Of them, online again. */
  back: number;
  firstBackAt: number | null;
  lastBackAt: number | null;
  /** Per agent: SIGTERM → its connection lost (how fast the shutdown reached it). */
  lostSinceSigterm: HistogramData;
  /** Per agent: SIGTERM → online again. */
  sinceSigterm: HistogramData;
  /** Per agent: new process listening → online again. */
  sinceListening: HistogramData;
  /** Per agent: its own connection loss → online again. */
  downtime: HistogramData;
  /** Attempts started after the mark. */
  attempts: AttemptCounts;
  /** Attempts still in flight when the report was taken. */
  pending: number;
  /** Connections lost again after an agent was back (an unstable recovery). */
  disconnectsAfterBack: number;
  /** Why established connections were lost after the mark (SIGTERM's, and any later). */
  disconnectCauses: Record<string, number>;
  beatsOk: number;
  beatsFailed: number;
  beatFailures: Record<string, number>;
}

export interface HostReport {
  agents: number;
  connect: ConnectPhaseReport;
  restart: RestartPhaseReport;
  terminated: number;
  /** Termination reasons (e.g. `credential_revoked`) and their counts. */
  terminations: Record<string, number>;
  rssBytes: number;
  /**
   * This host's event-loop delay since the mark (ms): how late its agents may have seen and
   * timed things in the restart phase — the client side's own error bar.
   */
  loopDelay: { p50Ms: number; p99Ms: number; maxMs: number };
}

export type FromHost =
  | { type: 'status'; status: HostStatus }
  | { type: 'report'; report: HostReport }
  | { type: 'fatal'; message: string };
