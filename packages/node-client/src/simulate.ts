/**
 * A load generator: N simulated nodes in one process, each with its own identity (enrolled with
 * one reusable key in batches of up to 500 — `device.enrollBatch`, decision 0015 — node id
 * `sim-<run>-<i>`, or reused from earlier runs), its own token and its own WebSocket, attached
 * to one session (or, without one, beating only). Optional churn: random disconnects (dropped
 * sockets → backoff → re-attach) and degraded periods.
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
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DEVICE_ENROLL_BATCH_MAX, type Capabilities } from '@tether/contracts';
import { echoCapability, systemMetricsCapability, type BuiltinCapability } from './builtins.js';
import type { NodeCredentials } from './credentials.js';
import { enrollBatch } from './enroll.js';
import { toTetherError } from './errors.js';
import { createTetherNode } from './node.js';
import type { NodeConnectionState, TetherNode } from './node-types.js';
import { processScheduler, type ScheduledTask } from './scheduler.js';
import {
  describeCause,
  distribution,
  histogram,
  loopDelayOf,
  summarise,
  type ChurnOptions,
  type LoopDelay,
  type Outage,
  type SimEvent,
  type SimStatus,
  type SimSummary,
  type SimulateOptions,
  type SimulatedNode,
  type Simulation,
} from './simulate-types.js';
import { createHttpClient } from './transport.js';
import { normaliseBaseUrl, silentLogger } from './util.js';

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
  /** Closed-loop start: nodes waiting for a slot, and slots taken. */
  readonly #startQueue: (() => void)[] = [];
  #starting = 0;
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
      ...(options.sessionId !== undefined ? { sessionId: options.sessionId } : {}),
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
        const retryAfterMs = e.cause.kind === 'open_failed' ? e.cause.retryAfterMs : undefined;
        this.#event({
          at: e.at,
          index,
          nodeId,
          type: 'connect_failed',
          attempt: e.attempt,
          cause,
          ...(e.error ? { code: e.error.code } : {}),
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        });
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
    // Closed-loop start (`startConcurrency`): a node started from the queue frees its slot when
    // it is online for the first time, or stops for good.
    let paced = false;
    const release = (): void => {
      if (!paced) return;
      paced = false;
      this.#starting--;
      this.#pumpStarts();
    };
    node.on('online', release);
    if (options.everyEvent && this.#emit) {
      node.on('connecting', (e) => {
        this.#event({ at: e.at, index, nodeId, type: 'connecting', attempt: e.attempt });
      });
      node.on('heartbeat', (e) => this.#event({ at: e.at, index, nodeId, type: 'heartbeat' }));
      node.on('heartbeat_failed', (e) => {
        const code = e.error.code;
        this.#event({ at: e.at, index, nodeId, type: 'heartbeat_failed', code });
      });
    }
    node.on('terminated', (reason) => {
      release();
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
      if (options.everyEvent) this.#event({ at: Date.now(), index, nodeId, type: 'started' });
      void node.start();
      if (options.churn) this.#scheduleChurn(index, node);
    };
    if (options.startConcurrency !== undefined) {
      this.#startQueue.push(() => {
        paced = true;
        start();
      });
      this.#pumpStarts();
      return;
    }
    const ramp = options.rampMs ?? 0;
    if (ramp > 0) this.#timer(this.#random() * ramp, start);
    else start();
  }

  #pumpStarts(): void {
    const limit = this.#options.startConcurrency ?? Infinity;
    while (this.#starting < limit && this.#startQueue.length > 0 && !this.#stopped) {
      this.#starting++;
      this.#startQueue.shift()!();
    }
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

  async stop(options: { detach?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) timer.cancel();
    this.#timers.clear();
    await Promise.all(
      this.nodes.map(({ node }) =>
        node.stop({ reason: 'simulation ended', detach: options.detach !== false }),
      ),
    );
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
