/**
 * Admission of new WebSocket sessions, driven by what this process can take now (design and
 * measurements: docs/performance.md "Admission", decision 0019).
 *
 * What is limited: **handshakes in flight** — an upgrade admitted whose connection has not yet
 * been served its first context (or its resume answer). A concurrency limit rather than a rate:
 * by Little's law the sessions admitted per second are the limit divided by how long a handshake
 * takes, and a handshake takes longer exactly when the process is busy (its steps wait for
 * event-loop turns and pool connections), so the same limit admits fewer per second on two busy
 * cores than on sixteen idle ones, with no rate to tune.
 *
 * How the limit moves (multiplicatively both ways, once per control step, `update()`, every
 * 100 ms):
 *  - **pressure** — the event loop's delay over the step above `loopDelayTargetMs` while the
 *    process itself is busy (half a core or more: a loop late because other processes hold the
 *    cores is not relieved by admitting fewer), or anyone waiting for a pool connection — cuts
 *    the limit by a factor (`DECREASE`), never below `minLimit` (32: at that floor the rate
 *    still falls as handshakes slow down);
 *  - no pressure while the limit was in use (handshakes in flight reached half of it, or an
 *    upgrade was refused) grows it by a quarter plus `INCREASE` per step (`GROWTH`): from 64 to
 *    1 000 in about 1.2 s, where adding 4 per step took 24 s and refused half of a reconnect
 *    wave meanwhile. Not doubling: that let a whole 1 000-agent wave in before the first loop
 *    delay was measured (docs/performance.md, "Admission");
 *  - an idle server keeps its limit (nothing measured says it could take more).
 * Signals are the server's own: the handshake's duration also contains the client's time to send
 * its connectionParams, which a stalled client host would otherwise charge to the server.
 *
 * A refused upgrade costs a few microseconds (an HTTP 503 with `Retry-After` and the typed
 * `system.unavailable` carrying `retryAfterMs`). Refused clients are not all told the same
 * instant: each gets its own slot in an appointment book that advances by one admission
 * interval per refusal, the interval being the inverse of the measured admission throughput
 * (handshakes completed per second, or the limit over the mean handshake duration when that is
 * higher — the capacity the current limit stands for). Slots beyond `maxRetryMs` are spread at
 * random over its second half instead of piling up at the cap. A slot is a hint, not a
 * reservation: a client arriving at its slot competes with newcomers, and a refused one gets a
 * later slot.
 *
 * Optional fixed caps for operators: `maxHandshakes` bounds the adaptive limit, and
 * `ratePerSecond` bounds admissions per second (a generic cell rate algorithm) — e.g. to protect
 * a database shared with other services, which this process cannot see waiting.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** The measurements one control step acts on. */
export interface AdmissionSignals {
  /** How late the event loop ran timers over the step (ms, beyond the sampler's resolution). */
  loopDelayMs: number;
  /** Requests waiting for a database pool connection now. */
  poolWaiting: number;
  /**
   * This process's CPU over the step, in cores (1 = one core busy the whole step). A late loop
   * counts as pressure only while the process itself is busy (≥ `BUSY_CORES`): a loop that is
   * late because other processes hold the cores is not relieved by admitting fewer. Absent: 1.
   */
  cpuCores?: number;
}

export interface AdmissionOptions {
  /** Fixed cap on handshakes in flight; 0 (default): the adaptive limit alone, up to `ceiling`. */
  maxHandshakes?: number;
  /** Fixed cap on sessions admitted per second (bursts of as many); 0 (default): none. */
  ratePerSecond?: number;
  /** The limit at start (default 64). */
  initialLimit?: number;
  /**
   * The limit is never cut below this (default 32). A handshake in flight costs the server
   * nothing while it waits (for the client's connectionParams, a loop turn, a query); what costs
   * is the rate, and at a given limit the rate falls as those waits lengthen. The floor keeps a
   * slow network (100–300 ms round trips) from throttling a fleet's return to a few per second.
   */
  minLimit?: number;
  /** Loop delay above which the server counts as under pressure (default 50 ms). */
  loopDelayTargetMs?: number;
  /** The longest wait handed to a refused client (default 30 s, the SDK's backoff cap). */
  maxRetryMs?: number;
  /** Monotonic clock in milliseconds. */
  now?: () => number;
  /** Uniform [0, 1) (tests inject it). */
  random?: () => number;
}

export type AdmissionAnswer =
  { admitted: true } | { admitted: false; retryAfterMs: number; reason: 'limit' | 'rate' };

/** One admitted handshake: `done()` once its first context is built (idempotent). */
export interface Handshake {
  readonly done: () => void;
}

export interface AdmissionSnapshot {
  /** The current limit on handshakes in flight. */
  limit: number;
  inFlight: number;
  /** The last control step's signals. */
  loopDelayMs: number;
  poolWaiting: number;
  /** Smoothed handshakes completed per second. */
  throughputPerSecond: number;
  refused: number;
}

/** The process's own CPU (cores) from which a late loop is its own doing. */
export const BUSY_CORES = 0.5;
/** Multiplicative cut under pressure. */
export const DECREASE = 0.75;
/**
 * Growth per calm step in which the limit was used: by a quarter, plus 4 (so a small limit still
 * moves). Proportional, not additive: +4 per step (+40/s) took a 10 000-agent reconnect wave
 * seconds to reach the limit the server could take, and every session refused meanwhile cost its
 * client a whole connection attempt (docs/performance.md, "Admission").
 */
export const GROWTH = 1.25;
export const INCREASE = 4;
/** The adaptive limit's own ceiling when no fixed cap is configured. */
const CEILING = 10_000;
/** Handshake duration assumed until one has been measured. */
const ASSUMED_HANDSHAKE_MS = 250;
/** Weight of the newest step in the smoothed throughput and handshake duration. */
const SMOOTHING = 0.3;

export class AdmissionController {
  readonly #min: number;
  readonly #max: number;
  readonly #loopDelayTargetMs: number;
  readonly #maxRetryMs: number;
  readonly #now: () => number;
  readonly #random: () => number;
  /** Rate cap (GCRA): emission interval, burst tolerance, theoretical arrival time. */
  readonly #rateIntervalMs: number;
  readonly #rateToleranceMs: number;
  #tat = 0;

  #limit: number;
  #inFlight = 0;
  /** The most handshakes in flight since the last step, and refusals since then. */
  #peak = 0;
  #refusedInStep = 0;
  #completedInStep = 0;
  #durationInStepMs = 0;
  #lastStep: number;
  #throughput = 0;
  #handshakeMs: number | null = null;
  #signals: AdmissionSignals = { loopDelayMs: 0, poolWaiting: 0 };
  /** The next slot handed to a refused session. */
  #appointment = 0;
  #refused = 0;

  constructor(options: AdmissionOptions = {}) {
    const cap = options.maxHandshakes ?? 0;
    const rate = options.ratePerSecond ?? 0;
    if (!(cap >= 0) || !(rate >= 0) || !Number.isFinite(cap) || !Number.isFinite(rate)) {
      throw new RangeError('admission: caps must be finite and ≥ 0');
    }
    this.#max = cap > 0 ? cap : CEILING;
    this.#min = Math.min(this.#max, Math.max(1, options.minLimit ?? 32));
    this.#limit = Math.min(this.#max, Math.max(this.#min, options.initialLimit ?? 64));
    this.#loopDelayTargetMs = options.loopDelayTargetMs ?? 50;
    this.#maxRetryMs = options.maxRetryMs ?? 30_000;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    this.#rateIntervalMs = rate === 0 ? 0 : 1_000 / rate;
    this.#rateToleranceMs = (Math.max(1, Math.floor(rate)) - 1) * this.#rateIntervalMs;
    this.#lastStep = this.#now();
  }

  /** Sessions refused since start. */
  get refused(): number {
    return this.#refused;
  }

  snapshot(): AdmissionSnapshot {
    return {
      limit: Math.floor(this.#limit),
      inFlight: this.#inFlight,
      loopDelayMs: this.#signals.loopDelayMs,
      poolWaiting: this.#signals.poolWaiting,
      throughputPerSecond: this.#throughput,
      refused: this.#refused,
    };
  }

  /** Before an upgrade: admitted, or when to come back. */
  admit(): AdmissionAnswer {
    const now = this.#now();
    if (this.#inFlight >= Math.floor(this.#limit)) return this.#refuse(now, 'limit');
    if (this.#rateIntervalMs > 0) {
      const tat = Math.max(this.#tat, now);
      if (tat - this.#rateToleranceMs > now) return this.#refuse(now, 'rate');
      this.#tat = tat + this.#rateIntervalMs;
    }
    return { admitted: true };
  }

  /** An admitted upgrade goes ahead: counted in flight until `done()`. */
  started(): Handshake {
    const began = this.#now();
    this.#inFlight++;
    if (this.#inFlight > this.#peak) this.#peak = this.#inFlight;
    let finished = false;
    return {
      done: () => {
        if (finished) return;
        finished = true;
        this.#inFlight--;
        this.#completedInStep++;
        this.#durationInStepMs += this.#now() - began;
      },
    };
  }

  /** One control step: the limit follows the signals (see the module comment). */
  update(signals: AdmissionSignals): void {
    const now = this.#now();
    const elapsedMs = Math.max(1, now - this.#lastStep);
    this.#lastStep = now;
    this.#signals = signals;
    const rate = (this.#completedInStep * 1_000) / elapsedMs;
    this.#throughput = this.#throughput * (1 - SMOOTHING) + rate * SMOOTHING;
    if (this.#completedInStep > 0) {
      const mean = this.#durationInStepMs / this.#completedInStep;
      this.#handshakeMs =
        this.#handshakeMs === null ? mean : this.#handshakeMs * (1 - SMOOTHING) + mean * SMOOTHING;
    }
    const lateLoop =
      signals.loopDelayMs > this.#loopDelayTargetMs && (signals.cpuCores ?? 1) >= BUSY_CORES;
    const pressure = lateLoop || signals.poolWaiting > 0;
    const used = this.#peak * 2 >= this.#limit || this.#refusedInStep > 0;
    if (pressure) {
      this.#limit = Math.max(this.#min, this.#limit * DECREASE);
    } else if (used) {
      this.#limit = Math.min(this.#max, this.#limit * GROWTH + INCREASE);
    }
    this.#peak = this.#inFlight;
    this.#refusedInStep = 0;
    this.#completedInStep = 0;
    this.#durationInStepMs = 0;
  }

  /** Admissions per second the book is paced at. */
  #pace(): number {
    const capacity =
      (Math.floor(this.#limit) * 1_000) / (this.#handshakeMs ?? ASSUMED_HANDSHAKE_MS);
    const paced = Math.max(this.#throughput, capacity, 1);
    return this.#rateIntervalMs > 0 ? Math.min(paced, 1_000 / this.#rateIntervalMs) : paced;
  }

  #refuse(now: number, reason: 'limit' | 'rate'): AdmissionAnswer {
    this.#refused++;
    this.#refusedInStep++;
    const intervalMs = 1_000 / this.#pace();
    const slot = Math.max(this.#appointment, now) + intervalMs;
    if (slot - now > this.#maxRetryMs) {
      // The book is full: the rest come back spread over the second half of the longest wait.
      const half = this.#maxRetryMs / 2;
      return { admitted: false, reason, retryAfterMs: Math.ceil(half + this.#random() * half) };
    }
    this.#appointment = slot;
    return { admitted: false, reason, retryAfterMs: Math.max(1, Math.ceil(slot - now)) };
  }
}

export interface AdmissionSamplerOptions {
  /** Requests waiting for a database pool connection (db/pool.ts `poolStats`). */
  poolWaiting: () => number;
  /** Control step interval (default 100 ms). */
  intervalMs?: number;
}

const now = (): number => performance.now();

/** The event-loop delay histogram's resolution (ms). */
const LOOP_RESOLUTION_MS = 10;

/**
 * Feeds `controller` its signals every `intervalMs`: the event loop's mean delay over the step
 * (Node's histogram, which samples every 10 ms and costs nothing between samples; or the step's
 * own timer lateness when that is larger — a loop stalled for the whole step records no sample),
 * the process's own CPU over the step, and the pool's waiting requests. Returns a stop function.
 */
export function startAdmissionSampler(
  controller: AdmissionController,
  options: AdmissionSamplerOptions,
): () => void {
  const intervalMs = options.intervalMs ?? 100;
  const histogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  histogram.enable();
  let due = performance.now() + intervalMs;
  let last = now();
  let lastCpu = process.cpuUsage();
  const timer = setInterval(() => {
    const at = now();
    const lateMs = Math.max(0, at - due);
    due = at + intervalMs;
    const cpu = process.cpuUsage(lastCpu);
    const cpuCores = (cpu.user + cpu.system) / 1_000 / Math.max(1, at - last);
    last = at;
    lastCpu = process.cpuUsage();
    const meanMs =
      histogram.count > 0 ? Math.max(0, histogram.mean / 1e6 - LOOP_RESOLUTION_MS) : lateMs;
    histogram.reset();
    controller.update({
      loopDelayMs: Math.max(meanMs, lateMs),
      poolWaiting: options.poolWaiting(),
      cpuCores,
    });
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    histogram.disable();
  };
}
