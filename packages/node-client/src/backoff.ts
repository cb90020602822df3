/**
 * Reconnection backoff: exponential with FULL jitter, as a pure module (the random source and
 * the clock are injected, so every property is unit-testable without timers).
 *
 *   delay(attempt) = random() · min(cap, base · 2^attempt)      random() ∈ [0, 1)
 *
 * Full jitter (rather than "base · 2^n ± 10%") is what spreads a fleet after a server restart:
 * every node that lost the same server at the same instant draws an independent delay from the
 * whole window, so reconnects arrive as a uniform trickle instead of synchronised waves.
 *
 * The attempt counter resets only after a connection has stayed up for `stableAfterMs`; a server
 * that accepts and then drops connections at once keeps the window growing instead of being
 * retried every `base` milliseconds forever.
 */

export interface BackoffOptions {
  /** First window (attempt 0), milliseconds. Default 250. */
  baseMs?: number;
  /** Largest window, milliseconds. Default 30 000. */
  capMs?: number;
  /** A connection up at least this long resets the attempt counter. Default 10 000. */
  stableAfterMs?: number;
  /** Uniform random source in [0, 1). Default Math.random. */
  random?: () => number;
  /** Monotonic clock in milliseconds. Default performance.now. */
  now?: () => number;
}

export const BACKOFF_DEFAULTS = {
  baseMs: 250,
  capMs: 30_000,
  stableAfterMs: 10_000,
} as const;

/** The upper bound of the window for `attempt` (0-based): min(cap, base · 2^attempt). */
export function backoffCeiling(attempt: number, baseMs: number, capMs: number): number {
  if (!Number.isFinite(attempt) || attempt < 0) attempt = 0;
  // 2 ** 1100 is Infinity; min() then yields the cap, so large attempts never overflow.
  return Math.min(capMs, baseMs * 2 ** Math.floor(attempt));
}

/** One full-jitter draw: an integer in [0, ceiling], never above the ceiling. */
export function fullJitterDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number,
): number {
  const ceiling = backoffCeiling(attempt, baseMs, capMs);
  let r = random();
  // A misbehaving source cannot push the delay out of its window.
  if (!(r >= 0)) r = 0;
  if (r >= 1) r = 1 - Number.EPSILON;
  return Math.floor(r * ceiling);
}

/**
 * The stateful side: counts failed attempts, remembers when the current connection came up, and
 * decides at disconnect whether it was stable enough to start over.
 */
export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  readonly stableAfterMs: number;
  readonly #random: () => number;
  readonly #now: () => number;
  #attempt = 0;
  #connectedAt: number | null = null;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? BACKOFF_DEFAULTS.baseMs;
    this.capMs = options.capMs ?? BACKOFF_DEFAULTS.capMs;
    this.stableAfterMs = options.stableAfterMs ?? BACKOFF_DEFAULTS.stableAfterMs;
    if (!(this.baseMs > 0) || !(this.capMs >= this.baseMs) || !(this.stableAfterMs >= 0)) {
      throw new RangeError('backoff: need 0 < baseMs <= capMs and stableAfterMs >= 0');
    }
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The attempt the next delay is drawn for (0 after a reset). */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt; advances the attempt counter. */
  next(): number {
    const delay = fullJitterDelay(this.#attempt, this.baseMs, this.capMs, this.#random);
    this.#attempt++;
    return delay;
  }

  /** A connection is up (attached): stability is measured from now. */
  connected(): void {
    this.#connectedAt = this.#now();
  }

  /**
   * The connection is gone. If it was up at least `stableAfterMs`, the counter starts over;
   * otherwise the next delay keeps growing. Returns whether it reset.
   */
  disconnected(): boolean {
    const since = this.#connectedAt;
    this.#connectedAt = null;
    if (since !== null && this.#now() - since >= this.stableAfterMs) {
      this.#attempt = 0;
      return true;
    }
    return false;
  }

  reset(): void {
    this.#attempt = 0;
    this.#connectedAt = null;
  }
}
