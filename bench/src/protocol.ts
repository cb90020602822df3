/**
 * Messages between the orchestrator and its load-generator child processes (Node IPC).
 *
 *   orchestrator                         worker
 *   init {spec}                  ───▶    opens its sockets (WS: open + one beat each)
 *                                ◀───    ready {connect stats}
 *   start {step, startAt}        ───▶    open-loop beats from startAt, each node at its phase
 *   stop                         ───▶    stops scheduling, waits for answers (bounded)
 *                                ◀───    result {latency, counts, backlog samples}
 *   (start … stop again for the next step on the same sockets)
 *   exit                         ───▶    closes sockets, exits 0
 *
 * All times are epoch milliseconds with sub-millisecond precision (performance.timeOrigin +
 * performance.now()); every process runs on the same machine, so they share one clock.
 */
import type { HistogramData } from './histogram.js';

export interface NodeIdentity {
  nodeId: string;
  token: string;
}

export type Transport = 'ws' | 'http';

/** `plain`: `{nodeId, healthState}`; `metrics`: plus a metrics object that changes every beat. */
export type Payload = 'plain' | 'metrics';

export interface WorkerSpec {
  workerIndex: number;
  transport: Transport;
  /** http://host:port of the server under test; the tRPC endpoint is /trpc on it. */
  baseUrl: string;
  nodes: NodeIdentity[];
  /** WebSocket handshakes in flight at once while connecting. */
  connectConcurrency: number;
  /** HTTP keep-alive sockets per worker. */
  httpMaxSockets: number;
  /** A beat without an answer after this long counts as a timeout. */
  requestTimeoutMs: number;
}

export interface Step {
  cadenceMs: number;
  payload: Payload;
  warmupMs: number;
  measureMs: number;
}

export interface ConnectReport {
  opened: number;
  failed: number;
  /** Open-to-first-acknowledged-beat latency per socket (WS only). */
  connect: HistogramData;
  /** First failure messages (including retried ones), for the report. */
  failures: string[];
  /** Connection attempts repeated because the server closed or refused the first one. */
  retried: number;
  durationMs: number;
}

export interface BacklogSample {
  at: number;
  inFlight: number;
}

/** What a worker counts over one measurement window. */
export interface StepCounts {
  /** Beats scheduled inside the measurement window (the offered load). */
  offered: number;
  /** Of those, sent (a WS beat is not sent when its socket is gone). */
  sent: number;
  ok: number;
  errors: Record<string, number>;
  timeouts: number;
  /** Acknowledgements received inside the window, whenever their beat was scheduled. */
  acksInWindow: number;
  backlog: BacklogSample[];
  /** CPU time of this worker during the window (ms, user + system). */
  cpuMs: number;
}

export interface StepReport extends StepCounts {
  /** Scheduled → acknowledged (includes any delay in the generator: coordinated omission safe). */
  latency: HistogramData;
  /** Scheduled → handed to the socket: how far behind its own schedule the generator ran. */
  sendLag: HistogramData;
  socketsOpen: number;
}

export type ToWorker =
  | { type: 'init'; spec: WorkerSpec }
  | { type: 'start'; step: Step; startAt: number }
  | { type: 'stop' }
  | { type: 'exit' };

export type FromWorker =
  | { type: 'ready'; report: ConnectReport }
  | { type: 'result'; report: StepReport }
  | { type: 'fatal'; message: string };

export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}
