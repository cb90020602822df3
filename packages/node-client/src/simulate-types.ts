/**
 * The simulator's public shapes (options, events, status, summary) and the helpers that turn
 * what it records into them: HDR-histogram distributions, loop delay, loss causes as text.
 * The simulator itself is `simulate.ts`.
 */
import type { IntervalHistogram } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import type { Capabilities } from '@tether/contracts';
import type { NodeCredentials } from './credentials.js';
import type { DisconnectCause, TetherNode, TetherNodeOptions } from './node-types.js';
import type { TetherLogger } from './util.js';

export interface ChurnOptions {
  /** Mean time between churn events per node (exponential), milliseconds. Default 30 000. */
  meanIntervalMs?: number;
  /** Share of churn events that drop the socket; the rest are degraded periods. Default 0.5. */
  disconnectShare?: number;
  /** A degraded period lasts uniformly between these, milliseconds. Default [2 000, 10 000]. */
  degradedMs?: [number, number];
}

export interface SimulateOptions {
  url: string;
  /**
   * The session every node attaches to. Without one the nodes only beat: online by presence,
   * no attachment (as `tether-agent run` without `--session`).
   */
  sessionId?: string;
  count: number;
  /** Enrolls the nodes that `identities` does not cover. */
  enrollmentKey?: string;
  /** Identities from earlier runs (used first, in order): no enrollment at all. */
  identities?: readonly NodeCredentials[];
  /** Called for each newly enrolled identity (e.g. to save it for the next run). */
  onEnrolled?: (credentials: NodeCredentials) => void;
  /** Declared by every node. Default `{ sim: { description: 'simulated node' } }`. */
  capabilities?: Capabilities;
  /**
   * Every node answers the commands `echo` and `system.metrics` (declared with their input
   * schemas, as `tether-agent run` does; the metrics are this machine's). Default true.
   */
  commands?: boolean;
  churn?: boolean | ChurnOptions;
  nodeVersion?: string;
  nodeType?: string;
  /** Identifies this run in node ids (`sim-<runId>-<i>`). Default 6 random hex characters. */
  runId?: string;
  /**
   * Nodes per `device.enrollBatch` call (1–500, default 500). Several nodes per call need a
   * reusable key: a single-use key is refused before anything is enrolled.
   */
  enrollBatchSize?: number;
  /** After each enrolled batch: identities so far (reused included) out of `count`. */
  onEnrollProgress?: (enrolled: number, total: number) => void;
  /** Before each wait during enrollment (rate limit, server unavailable): how long and why. */
  onEnrollWait?: (wait: { waitMs: number; code: string }) => void;
  /** Spread node starts uniformly over this many milliseconds. Default 0 (all at once). */
  rampMs?: number;
  /**
   * Closed-loop start: at most this many nodes started and never online yet at once; the next
   * one starts when one comes online for the first time (or stops for good), so a fleet comes
   * up at the pace the server keeps. Default: no limit.
   */
  startConcurrency?: number;
  random?: () => number;
  /** Passed to every node (backoff, timeouts, heartbeat override...). */
  nodeOptions?: Partial<
    Pick<
      TetherNodeOptions,
      | 'backoff'
      | 'heartbeatIntervalMs'
      | 'heartbeatJitter'
      | 'callTimeoutMs'
      | 'connectTimeoutMs'
      | 'keepAliveIntervalMs'
      | 'pongTimeoutMs'
    >
  >;
  logger?: TetherLogger;
  /** Every node event, as it happens (nothing is recorded otherwise). */
  onEvent?: (event: SimEvent) => void;
  /**
   * Also pass `onEvent` the per-attempt and per-beat events (`started`, `connecting`,
   * `heartbeat`, `heartbeat_failed`): many more events, for callers that time each attempt.
   * Default false.
   */
  everyEvent?: boolean;
  signal?: AbortSignal;
}

export type SimEventType =
  | 'enrolled'
  | 'connected'
  | 'attached'
  | 'online'
  | 'connect_failed'
  | 'disconnected'
  | 'reconnect_scheduled'
  | 'terminated'
  | 'churn_disconnect'
  | 'churn_degraded'
  | 'churn_recovered'
  // Only with `everyEvent`:
  | 'started'
  | 'connecting'
  | 'heartbeat'
  | 'heartbeat_failed';

export interface SimEvent {
  /** Epoch milliseconds. */
  at: number;
  index: number;
  nodeId: string;
  type: SimEventType;
  attempt?: number;
  reconnect?: boolean;
  /** reconnect_scheduled: the backoff delay drawn. */
  delayMs?: number;
  /** online after a loss: time since the connection was lost. */
  downtimeMs?: number;
  /** connect_failed/disconnected: the loss cause; terminated: the reason. */
  cause?: string;
  /** connect_failed, heartbeat_failed: the Tether error code the server answered, if any. */
  code?: string;
  /** connect_failed: the server deferred the session (admission) and said when to return. */
  retryAfterMs?: number;
}

export interface SimStatus {
  at: number;
  elapsedMs: number;
  total: number;
  /** Nodes with an identity (reused or enrolled). */
  enrolled: number;
  /** Sockets open (connected, attached or online). */
  connected: number;
  /** Attached to the session (including online). */
  attached: number;
  online: number;
  /** Online nodes currently reporting `degraded` (churn). */
  degraded: number;
  reconnects: number;
  /** Connection attempts that failed (admission deferrals not included). */
  connectErrors: number;
  /** Connection attempts the server deferred (its admission limit: "come back in N ms"). */
  deferrals: number;
  disconnects: number;
  terminated: number;
}

export interface Distribution {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

/** A period with fewer than all nodes online, after all had been online. */
export interface Outage {
  /** The first node left `online`. */
  from: number;
  /** The first node came back online (null if none yet). */
  firstBackAt: number | null;
  /** Every node online again (null while it lasts). */
  to: number | null;
  /** `to − from`. */
  durationMs: number | null;
  /** First to last node back online: `to − firstBackAt`. */
  reconnectMs: number | null;
  /** Each return, relative to the first return (the spread of the reconnect wave). */
  spread: Distribution;
  minOnline: number;
}

/** This process's event-loop delay (milliseconds), over a window. */
export interface LoopDelay {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface SimSummary {
  runId: string;
  startedAt: number;
  status: SimStatus;
  /** From start to the first moment every node was online (null if never). */
  timeToAllOnlineMs: number | null;
  outages: Outage[];
  /** Per re-attachment: time from losing the connection to being online again. */
  reconnectDowntime: Distribution;
  /** Per scheduled retry: the backoff delay drawn. */
  backoffDelay: Distribution;
  /** This process's event-loop delay since the simulation started. */
  loopDelay: LoopDelay;
}

export interface SimulatedNode {
  index: number;
  nodeId: string;
  credentials: NodeCredentials;
  node: TetherNode;
}

export interface Simulation {
  readonly runId: string;
  readonly startedAt: number;
  readonly nodes: readonly SimulatedNode[];
  status(): SimStatus;
  /** Resolves when `predicate(status)` holds (checked at every state change), or rejects on timeout. */
  waitUntil(predicate: (status: SimStatus) => boolean, timeoutMs?: number): Promise<SimStatus>;
  summary(): SimSummary;
  /**
   * This process's event-loop delay since the start, or since the previous call with
   * `{ reset: true }` (e.g. one window per status line).
   */
  loopDelay(options?: { reset?: boolean }): LoopDelay;
  /**
   * Stops churn and every node; each detaches unless `detach: false` (daemons going away
   * rather than leaving: their attachments stay until the server or an owner ends them).
   */
  stop(options?: { detach?: boolean }): Promise<void>;
}

/** An HDR histogram of milliseconds (3 significant digits: exact below 2 048 ms). */
export function histogram(): hdr.Histogram {
  return hdr.build({ numberOfSignificantValueDigits: 3 });
}

export function summarise(h: hdr.Histogram): Distribution {
  if (h.totalCount === 0) return { count: 0, p50: null, p95: null, p99: null, max: null };
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50),
    p95: h.getValueAtPercentile(95),
    p99: h.getValueAtPercentile(99),
    max: h.maxValue,
  };
}

/** p50/p95/p99/max of `values` (milliseconds, rounded to integers; HDR histogram, 3 digits). */
export function distribution(values: readonly number[]): Distribution {
  const h = histogram();
  for (const value of values) h.recordValue(Math.max(0, Math.round(value)));
  return summarise(h);
}

export function loopDelayOf(h: IntervalHistogram): LoopDelay {
  // Before its first sample the histogram reports NaN/huge values: report 0 then.
  if (h.count === 0) return { p50Ms: 0, p99Ms: 0, maxMs: 0 };
  const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
  return { p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) };
}

export function describeCause(cause: DisconnectCause): string {
  switch (cause.kind) {
    case 'closed':
      return cause.closeCode === undefined ? 'closed' : `closed ${cause.closeCode}`;
    case 'call_failed':
      return `call_failed ${cause.code}`;
    case 'open_failed':
      return `open_failed ${cause.message}`;
    case 'dropped':
      return `dropped ${cause.reason}`;
    case 'reconnect_requested':
    case 'stopped':
      return cause.kind;
  }
}
