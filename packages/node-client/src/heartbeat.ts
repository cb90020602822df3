/**
 * A node's heartbeat loop: one beat at a time on the node's current connection, at the cadence
 * the server advertised (or the node's override) ± jitter, the first beat of a connection spread
 * over up to half a cadence early. The next beat sits on the process's shared scheduler (one Node
 * timer for every node of the process). A refused beat keeps its metrics for the next one; a
 * terminal refusal ends the connection; any other refusal beats on.
 */
import type { HeartbeatMetrics, RuntimeNodeHealthState } from '@tether/contracts';
import { ConnectionLost } from './call.js';
import { isTerminal, toTetherError } from './errors.js';
import { MetricsCollector } from './metrics.js';
import type { TetherNodeEvents } from './node-types.js';
import { processScheduler, type ScheduledTask } from './scheduler.js';
import type { Connection } from './transport.js';
import type { Emitter, TetherLogger } from './util.js';

export interface HeartbeatOptions {
  /** Overrides the server-advertised cadence (milliseconds). */
  intervalMs: number | undefined;
  /** Jitter as a fraction of the cadence. */
  jitter: number;
  random: () => number;
  /** Collect machine metrics for every beat that has none reported. */
  autoMetrics: boolean;
}

/** What the loop needs of its node. */
export interface HeartbeatHost {
  readonly emitter: Emitter<TetherNodeEvents>;
  readonly log: TetherLogger;
  /** `conn` is still the node's connection (nothing is sent on an old one). */
  isCurrent(conn: Connection): boolean;
  nodeId(): string;
  health(): RuntimeNodeHealthState;
  /** The cadence the server advertised, once known. */
  serverIntervalMs(): number | undefined;
  /** A call on `conn` (`callOn` with the node's call timeout). */
  call<T>(conn: Connection, call: () => Promise<T>): Promise<T>;
}

export class Heartbeats {
  readonly #host: HeartbeatHost;
  readonly #options: HeartbeatOptions;
  /** Created on first use: a simulator runs thousands of nodes that never report metrics. */
  #metricsCollector: MetricsCollector | undefined;
  #pendingMetrics: HeartbeatMetrics | undefined;
  /** The next beat, on the process's shared scheduler (one Node timer for every node). */
  #beatTimer: ScheduledTask | null = null;
  /** The connection the beat timer last beat for (its first beat's phase is drawn wider). */
  #beatConn: Connection | null = null;
  /** Beats the server accepted. */
  count = 0;
  lastAt: number | null = null;

  constructor(host: HeartbeatHost, options: HeartbeatOptions) {
    this.#host = host;
    this.#options = options;
  }

  /** Collects CPU %, memory used/total and uptime (+ custom gauges) for the next beat. */
  reportMetrics(gauges?: Record<string, number>): HeartbeatMetrics {
    const metrics = this.#metrics().collect(gauges);
    this.#pendingMetrics = metrics;
    return metrics;
  }

  /** The connection ended: no beat until `schedule` or `beat` is called for the next one. */
  stop(): void {
    this.#beatTimer?.cancel();
    this.#beatConn = null;
  }

  #metrics(): MetricsCollector {
    return (this.#metricsCollector ??= new MetricsCollector());
  }

  #interval(): number {
    return this.#options.intervalMs ?? this.#host.serverIntervalMs() ?? 15_000;
  }

  schedule(conn: Connection): void {
    const interval = this.#interval();
    const jitter = this.#options.jitter;
    const random = this.#options.random;
    // A connection's first beat comes up to half a cadence early (never late): nodes that
    // attached together (a cold start, a reconnect wave) then beat spread over the cadence
    // instead of in lockstep. Later beats: the cadence ± jitter.
    const first = this.#beatConn !== conn;
    this.#beatConn = conn;
    const factor = first
      ? 1 - Math.min(0.5, 5 * jitter) * random()
      : 1 + (random() * 2 - 1) * jitter;
    const wait = Math.max(1, interval * factor);
    if (this.#beatTimer === null) {
      this.#beatTimer = processScheduler().schedule(wait, () => void this.beat(this.#beatConn!));
    } else {
      this.#beatTimer.reschedule(wait);
    }
  }

  /** Beats now on `conn` (if it is still the node's open connection), then schedules the next. */
  async beat(conn: Connection): Promise<void> {
    this.#beatTimer?.cancel();
    if (!this.#host.isCurrent(conn) || !conn.isOpen) return;
    const nodeId = this.#host.nodeId();
    let metrics = this.#pendingMetrics;
    this.#pendingMetrics = undefined;
    if (metrics === undefined && this.#options.autoMetrics) metrics = this.#metrics().collect();
    const healthState = this.#host.health();
    try {
      await this.#host.call(conn, () =>
        conn.client.runtimenode.heartbeat.mutate({
          nodeId,
          healthState,
          ...(metrics !== undefined ? { metrics } : {}),
        }),
      );
      this.count++;
      this.lastAt = Date.now();
      this.#host.emitter.emit('heartbeat', {
        at: this.lastAt,
        healthState,
        ...(metrics !== undefined ? { metrics } : {}),
      });
    } catch (raw) {
      if (raw instanceof ConnectionLost) return;
      const error = toTetherError(raw);
      // Unsent metrics wait for the next beat unless newer ones were reported meanwhile.
      this.#pendingMetrics ??= metrics;
      this.#host.emitter.emit('heartbeat_failed', { at: Date.now(), error });
      if (isTerminal(error)) {
        conn.lose({ kind: 'call_failed', code: error.code, message: error.message, error });
        return;
      }
      // rate_limited, system.unavailable (draining: the socket goes next), system.internal: beat on.
      this.#host.log.warn({ nodeId, code: error.code }, 'heartbeat failed');
    }
    if (this.#host.isCurrent(conn) && conn.isOpen) this.schedule(conn);
  }
}
