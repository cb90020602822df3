/**
 * Messages of the `commands` scenario's child processes (Node IPC).
 *
 *   orchestrator                       node host (a slice of the fleet)
 *   init {spec}                 ───▶   starts its nodes: SDK nodes answering `echo` (Tether), or
 *                                      pollers asking the baseline for work every second
 *                               ◀───   status {online, started}            (every 250 ms)
 *   exit                        ───▶   stops them, exits 0
 *
 *   orchestrator                       driver (the invoking operator)
 *   run {spec}                  ───▶   warm-up, then `concurrency` invocations in flight for
 *                                      `durationMs`, each timed from the call to the result
 *                               ◀───   report {latency, ok, failed, …}
 *   exit                        ───▶   exits 0
 */
import type { HistogramData } from '../histogram.js';
import type { Target } from '../servers.js';

export interface HostNode {
  nodeId: string;
  token: string;
}

export interface HostSpec {
  target: Target;
  baseUrl: string;
  ownerParticipantId: string;
  /** The session SDK nodes attach to (Tether). */
  sessionId: string | null;
  nodes: HostNode[];
  /** Nodes started but not yet online, at most (a cold start at the server's pace). */
  connectConcurrency: number;
  /** Baseline nodes ask for work this often. */
  pollIntervalMs: number;
}

export interface HostStatus {
  started: number;
  online: number;
  /** Commands answered by this host's nodes. */
  answered: number;
  /** Baseline: poll requests that failed. */
  pollErrors: number;
}

export type ToHost = { type: 'init'; spec: HostSpec } | { type: 'exit' };
export type FromHost = { type: 'status'; status: HostStatus } | { type: 'fatal'; message: string };

export interface DriverSpec {
  target: Target;
  baseUrl: string;
  /** A participant token of the nodes' owner (Tether). */
  token: string;
  nodeIds: string[];
  /** Invocations in flight at once (closed loop). */
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** Baseline: the caller polls for the result this often. */
  callerPollMs: number;
  /** A command's deadline (Tether `timeoutMs`). */
  timeoutMs: number;
}

export interface DriverReport {
  /** Completed (succeeded) in the measured window. */
  ok: number;
  failed: number;
  failures: Record<string, number>;
  /** Call → result, measured window only. */
  latency: HistogramData;
  /** Measured window length (ms). */
  windowMs: number;
  loopDelay: { p99Ms: number; maxMs: number };
}

export type ToDriver = { type: 'run'; spec: DriverSpec } | { type: 'exit' };
export type FromDriver =
  { type: 'report'; report: DriverReport } | { type: 'fatal'; message: string };
