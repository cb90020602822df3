/**
 * A load generator: N simulated nodes in one process, each with its own identity (enrolled with
 * one reusable key in batches of up to 500 — `device.enrollBatch`, decision 0015 — node id
 * `sim-<run>-<i>`, or reused from earlier runs), its own token and its
 * own WebSocket, attached to one session. Optional churn: random disconnects (dropped sockets →
 * backoff → re-attach) and degraded periods.
 *
 * Built for thousands of nodes in one event loop: counts are kept incrementally from state
 * events (`status()` is O(1)), nothing grows per event unless the caller subscribes `onEvent`
 * (distributions are HDR histograms of fixed size), and the nodes' timed work (beats, backoff
 * waits, call and handshake deadlines, keep-alive) runs on the process's one shared scheduler
 * (`scheduler.ts`), as do the ramp and churn timers. The process's own event-loop
 * delay is measured (`loopDelay()`): a late loop delays every node's timestamps and timers.
 *
 * It measures what a bench needs: time until every node was first online, and for every
 * "outage" (fewer than all online after all had been, e.g. a server restart) when it began,
 * when the first and the last node came back, and the spread of their returns.
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { DEVICE_ENROLL_BATCH_MAX, type Capabilities } from '@tether/contracts';
import { echoCapability, systemMetricsCapability, type BuiltinCapability } from './builtins.js';
import type { NodeCredentials } from './credentials.js';
import { enrollBatch } from './enroll.js';
import { toTetherError } from './errors.js';
import {
  createTetherNode,
  type DisconnectCause,
  type NodeConnectionState,
  type TetherNode,
  type TetherNodeOptions,
} from './node.js';
import { processScheduler, type ScheduledTask } from './scheduler.js';
import { createHttpClient } from './transport.js';
import { normaliseBaseUrl, silentLogger, type TetherLogger } from './util.js';

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
  sessionId: string;
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
  | 'churn_recovered';

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
  /** Stops churn and every node (each detaches). */
  stop(): Promise<void>;
}

/** An HDR histogram of milliseconds (3 significant digits: exact below 2 048 ms). */
function histogram(): hdr.Histogram {
  return hdr.build({ numberOfSignificantValueDigits: 3 });
}

function summarise(h: hdr.Histogram): Distribution {
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

function loopDelayOf(h: IntervalHistogram): LoopDelay {
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

const DEFAULT_CAPABILITIES: Capabilities = { sim: { description: 'simulated node' } };
/** One handler shared by every simulated node (it keeps no state). */
const ECHO = echoCapability();

interface OpenOutage {
  from: number;
  returns: number[];
  minOnline: number;
}

class SimulationImpl implements Simulation {
  readonly runId: string;
  readonly startedAt = Date.now();
  readonly nodes: SimulatedNode[] = [];
  readonly #options: SimulateOptions;
  /** One metrics sampler for every node (they all run on this machine). */
  #metricsCapability: BuiltinCapability | undefined;
  readonly #url: string;
  readonly #random: () => number;
  readonly #emit: ((event: SimEvent) => void) | undefined;
  /** Ramp and churn timers, on the shared scheduler (no Node timer per node). */
  readonly #timers = new Set<ScheduledTask>();
  readonly #waiters = new Set<() => void>();
  readonly #socketOpen = new Set<number>();
  readonly #degraded = new Set<number>();
  readonly #states = new Map<NodeConnectionState, number>();
  readonly #downtimes = histogram();
  readonly #backoffDelays = histogram();
  /** This process's loop delay: since the start, and since the last windowed read. */
  readonly #loopTotal = monitorEventLoopDelay({ resolution: 10 });
  readonly #loopWindow = monitorEventLoopDelay({ resolution: 10 });
  readonly #outages: Outage[] = [];
  #open: OpenOutage | null = null;
  #enrolled = 0;
  #reconnects = 0;
  #connectErrors = 0;
  #deferrals = 0;
  #disconnects = 0;
  #allOnlineAt: number | null = null;
  #stopped = false;

  constructor(options: SimulateOptions) {
    this.#options = options;
    this.#url = normaliseBaseUrl(options.url);
    this.runId = options.runId ?? randomBytes(3).toString('hex');
    this.#random = options.random ?? Math.random;
    this.#emit = options.onEvent;
    this.#loopTotal.enable();
    this.#loopWindow.enable();
  }

  loopDelay(options: { reset?: boolean } = {}): LoopDelay {
    if (!options.reset) return loopDelayOf(this.#loopTotal);
    const window = loopDelayOf(this.#loopWindow);
    this.#loopWindow.reset();
    return window;
  }

  #count(state: NodeConnectionState): number {
    return this.#states.get(state) ?? 0;
  }

  status(): SimStatus {
    const at = Date.now();
    let degraded = 0;
    for (const index of this.#degraded) if (this.nodes[index]?.node.state === 'online') degraded++;
    return {
      at,
      elapsedMs: at - this.startedAt,
      total: this.#options.count,
      enrolled: this.#enrolled,
      connected: this.#socketOpen.size,
      attached: this.#count('attached') + this.#count('online'),
      online: this.#count('online'),
      degraded,
      reconnects: this.#reconnects,
      connectErrors: this.#connectErrors,
      deferrals: this.#deferrals,
      disconnects: this.#disconnects,
      terminated: this.#count('terminated'),
    };
  }

  waitUntil(predicate: (status: SimStatus) => boolean, timeoutMs = 60_000): Promise<SimStatus> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const status = this.status();
        if (!predicate(status)) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(status);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `simulation condition not reached in ${timeoutMs} ms: ${JSON.stringify(this.status())}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  summary(): SimSummary {
    const outages = [...this.#outages];
    if (this.#open) outages.push(this.#closedOutage(this.#open, null));
    return {
      runId: this.runId,
      startedAt: this.startedAt,
      status: this.status(),
      timeToAllOnlineMs: this.#allOnlineAt === null ? null : this.#allOnlineAt - this.startedAt,
      outages,
      reconnectDowntime: summarise(this.#downtimes),
      backoffDelay: summarise(this.#backoffDelays),
      loopDelay: loopDelayOf(this.#loopTotal),
    };
  }

  #closedOutage(open: OpenOutage, to: number | null): Outage {
    // Returns are pushed in time order: the first is the earliest.
    const first = open.returns[0] ?? null;
    return {
      from: open.from,
      firstBackAt: first,
      to,
      durationMs: to === null ? null : to - open.from,
      reconnectMs: to === null || first === null ? null : to - first,
      spread: distribution(first === null ? [] : open.returns.map((t) => t - first)),
      minOnline: open.minOnline,
    };
  }

  /** A node changed state: counters, all-online and outage bookkeeping, waiters. */
  #onState(index: number, state: NodeConnectionState, previous: NodeConnectionState): void {
    this.#states.set(previous, this.#count(previous) - 1);
    this.#states.set(state, this.#count(state) + 1);
    if (state === 'stopped' || state === 'terminated') this.#socketOpen.delete(index);
    const at = Date.now();
    const online = this.#count('online');
    const total = this.#options.count;
    if (this.#allOnlineAt === null) {
      if (online === total) this.#allOnlineAt = at;
    } else if (!this.#stopped) {
      if (previous === 'online' && online < total) {
        this.#open ??= { from: at, returns: [], minOnline: online };
        this.#open.minOnline = Math.min(this.#open.minOnline, online);
      } else if (state === 'online' && this.#open) {
        this.#open.returns.push(at);
        if (online === total) {
          this.#outages.push(this.#closedOutage(this.#open, at));
          this.#open = null;
        }
      }
    }
    for (const waiter of [...this.#waiters]) waiter();
  }

  #event(event: SimEvent): void {
    this.#emit?.(event);
  }

  async enrollAndStart(): Promise<void> {
    const options = this.#options;
    const reused = (options.identities ?? []).slice(0, options.count);
    for (const credentials of reused) {
      this.#enrolled++;
      this.#startNode(this.nodes.length, { ...credentials, url: this.#url });
    }
    const missing = options.count - reused.length;
    if (missing === 0) return;
    if (!options.enrollmentKey) {
      throw new TypeError(
        `simulate: ${missing} nodes have no identity; an enrollmentKey is needed to enroll them`,
      );
    }
    const enrollmentKey = options.enrollmentKey;
    const client = createHttpClient(this.#url);
    const batchSize = Math.max(
      1,
      Math.min(options.enrollBatchSize ?? DEVICE_ENROLL_BATCH_MAX, DEVICE_ENROLL_BATCH_MAX),
    );
    options.onEnrollProgress?.(this.#enrolled, options.count);
    // One batch at a time, all or none each (a single-use key fails the first batch of several
    // with enrollment.key_single_use, before anything is enrolled); each batch's nodes start as
    // soon as it lands.
    for (let first = reused.length; first < options.count && !this.#stopped; first += batchSize) {
      const indexes = Array.from(
        { length: Math.min(batchSize, options.count - first) },
        (_, i) => first + i,
      );
      const enrolled = await enrollBatch({
        url: this.#url,
        client,
        enrollmentKey,
        nodes: indexes.map((index) => ({
          nodeId: `sim-${this.runId}-${index}`,
          name: `simulated node ${index}`,
          nodeType: options.nodeType ?? 'simulated',
          platform: 'tether-agent simulate',
          labels: { 'tether.sim/run': this.runId },
          ...(options.nodeVersion !== undefined ? { nodeVersion: options.nodeVersion } : {}),
        })),
        // The public rate limit counts a batch once; should it still be met (other calls from
        // this address), wait as told, forever, and say so.
        retry: {
          attempts: Infinity,
          ...(options.onEnrollWait
            ? { onWait: ({ waitMs, code }) => options.onEnrollWait?.({ waitMs, code }) }
            : {}),
        },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      enrolled.forEach((credentials, i) => {
        const index = indexes[i]!;
        this.#enrolled++;
        options.onEnrolled?.(credentials);
        this.#event({ at: Date.now(), index, nodeId: credentials.nodeId, type: 'enrolled' });
        if (!this.#stopped) this.#startNode(index, credentials);
      });
      options.onEnrollProgress?.(this.#enrolled, options.count);
    }
  }

  #startNode(index: number, credentials: NodeCredentials): void {
    const options = this.#options;
    const nodeId = credentials.nodeId;
    const node = createTetherNode({
      url: this.#url,
      token: credentials.token,
      nodeId,
      ownerParticipantId: credentials.ownerParticipantId,
      sessionId: options.sessionId,
      capabilities: options.capabilities ?? DEFAULT_CAPABILITIES,
      random: this.#random,
      logger: options.logger ?? silentLogger,
      ...(options.nodeVersion !== undefined ? { nodeVersion: options.nodeVersion } : {}),
      ...options.nodeOptions,
    });
    if (options.commands !== false) {
      this.#metricsCapability ??= systemMetricsCapability();
      for (const builtin of [ECHO, this.#metricsCapability]) {
        node.onCommand(builtin.name, builtin.handler, {
          ...builtin.options,
          descriptor: builtin.descriptor,
        });
      }
    }
    this.#states.set('idle', this.#count('idle') + 1);
    node.on('state', (state, previous) => this.#onState(index, state, previous));
    node.on('connected', (e) => {
      this.#socketOpen.add(index);
      if (this.#emit) {
        this.#event({ at: e.at, index, nodeId, type: 'connected', attempt: e.attempt });
      }
    });
    node.on('connect_failed', (e) => {
      this.#socketOpen.delete(index);
      // The server's admission limit deferred the session (it said when to return): a wait,
      // not an error.
      if (e.cause.kind === 'open_failed' && e.cause.retryAfterMs !== undefined) this.#deferrals++;
      else this.#connectErrors++;
      if (this.#emit) {
        const cause = describeCause(e.cause);
        this.#event({ at: e.at, index, nodeId, type: 'connect_failed', attempt: e.attempt, cause });
      }
    });
    node.on('disconnected', (e) => {
      this.#socketOpen.delete(index);
      this.#disconnects++;
      if (this.#emit) {
        this.#event({
          at: e.at,
          index,
          nodeId,
          type: 'disconnected',
          cause: describeCause(e.cause),
        });
      }
    });
    node.on('attached', (e) => {
      if (e.reconnect) this.#reconnects++;
      if (this.#emit) {
        this.#event({ at: e.at, index, nodeId, type: 'attached', reconnect: e.reconnect });
      }
    });
    node.on('online', (e) => {
      if (e.downtimeMs !== null) this.#downtimes.recordValue(Math.max(0, Math.round(e.downtimeMs)));
      if (this.#emit) {
        this.#event({
          at: e.at,
          index,
          nodeId,
          type: 'online',
          reconnect: e.reconnect,
          ...(e.downtimeMs !== null ? { downtimeMs: e.downtimeMs } : {}),
        });
      }
    });
    node.on('reconnect_scheduled', (e) => {
      this.#backoffDelays.recordValue(Math.max(0, Math.round(e.delayMs)));
      if (this.#emit) {
        const { at, attempt, delayMs } = e;
        this.#event({ at, index, nodeId, type: 'reconnect_scheduled', attempt, delayMs });
      }
    });
    node.on('terminated', (reason) => {
      this.#event({
        at: Date.now(),
        index,
        nodeId,
        type: 'terminated',
        cause: `${reason.code}: ${reason.message}`,
      });
    });
    this.nodes[index] = { index, nodeId, credentials, node };
    const start = (): void => {
      if (this.#stopped) return;
      void node.start();
      if (options.churn) this.#scheduleChurn(index, node);
    };
    const ramp = options.rampMs ?? 0;
    if (ramp > 0) this.#timer(this.#random() * ramp, start);
    else start();
  }

  #churnOptions(): Required<ChurnOptions> {
    const churn = typeof this.#options.churn === 'object' ? this.#options.churn : {};
    return {
      meanIntervalMs: churn.meanIntervalMs ?? 30_000,
      disconnectShare: churn.disconnectShare ?? 0.5,
      degradedMs: churn.degradedMs ?? [2_000, 10_000],
    };
  }

  #timer(ms: number, fn: () => void): void {
    const timer = processScheduler().schedule(ms, () => {
      this.#timers.delete(timer);
      if (!this.#stopped) fn();
    });
    this.#timers.add(timer);
  }

  #scheduleChurn(index: number, node: TetherNode): void {
    const churn = this.#churnOptions();
    // Exponential inter-arrival times: churn events form a Poisson process per node.
    const wait = -Math.log(1 - this.#random()) * churn.meanIntervalMs;
    this.#timer(wait, () => {
      const nodeId = node.nodeId ?? '';
      if (node.state === 'online' && !this.#degraded.has(index)) {
        if (this.#random() < churn.disconnectShare) {
          this.#event({ at: Date.now(), index, nodeId, type: 'churn_disconnect' });
          node.disconnect('churn');
        } else {
          const [min, max] = churn.degradedMs;
          this.#degraded.add(index);
          this.#event({ at: Date.now(), index, nodeId, type: 'churn_degraded' });
          node.setHealth('degraded', 'simulated churn').catch(() => undefined);
          this.#timer(min + this.#random() * (max - min), () => {
            this.#degraded.delete(index);
            this.#event({ at: Date.now(), index, nodeId, type: 'churn_recovered' });
            node.setHealth('online', 'simulated recovery').catch(() => undefined);
          });
        }
      }
      if (node.state !== 'terminated' && node.state !== 'stopped') {
        this.#scheduleChurn(index, node);
      }
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) timer.cancel();
    this.#timers.clear();
    await Promise.all(this.nodes.map(({ node }) => node.stop({ reason: 'simulation ended' })));
    this.#loopTotal.disable();
    this.#loopWindow.disable();
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/**
 * Starts `count` nodes: reused identities at once, the rest as soon as each is enrolled;
 * resolves once every node has started (not necessarily online: use `waitUntil`). A
 * non-retryable enrollment failure (bad key...) stops the nodes already started and rejects
 * with that TetherError.
 */
export async function startSimulation(options: SimulateOptions): Promise<Simulation> {
  if (!Number.isInteger(options.count) || options.count < 1) {
    throw new TypeError('simulate: count must be a positive integer');
  }
  const simulation = new SimulationImpl(options);
  try {
    await simulation.enrollAndStart();
  } catch (error) {
    await simulation.stop();
    if (options.signal?.aborted || error instanceof TypeError) throw error;
    throw toTetherError(error);
  }
  return simulation;
}
