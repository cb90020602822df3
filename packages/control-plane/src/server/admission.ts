/**
 * Admission of new WebSocket sessions: at most `ratePerSecond` upgrades are accepted, with
 * bursts of up to `burst` (a generic cell rate algorithm: one "theoretical arrival time"). A
 * session over the limit is refused before the upgrade — an HTTP 503 with `Retry-After` and the
 * typed `system.unavailable` error carrying `retryAfterMs` — which costs the server a few
 * microseconds instead of a session it cannot serve in time (a reconnect wave otherwise ends in
 * handshake and call timeouts that are retried at once, and the wave feeds itself).
 *
 * Refused clients are not all told the same instant, which would bring them back as one herd:
 * each gets its own slot in an appointment book that advances by one admission interval per
 * refusal, so they return at the admitted rate. A slot is a hint, not a reservation: a client
 * arriving at its slot competes with newcomers, and a refused one gets a later slot.
 */

export interface AdmissionOptions {
  /** Sessions admitted per second on average; 0 admits everything. */
  ratePerSecond: number;
  /** Sessions admitted at once after a quiet period. Default: one second's worth. */
  burst?: number;
  /** Monotonic clock in milliseconds. */
  now?: () => number;
}

export type AdmissionAnswer = { admitted: true } | { admitted: false; retryAfterMs: number };

export class Admission {
  readonly #intervalMs: number;
  readonly #toleranceMs: number;
  readonly #now: () => number;
  /** When the next session is due if sessions arrive exactly at the rate. */
  #tat = 0;
  /** The next slot handed to a refused session. */
  #appointment = 0;
  #refused = 0;

  constructor(options: AdmissionOptions) {
    const rate = options.ratePerSecond;
    if (!(rate >= 0) || !Number.isFinite(rate)) throw new RangeError('admission: rate must be ≥ 0');
    this.#intervalMs = rate === 0 ? 0 : 1_000 / rate;
    const burst = Math.max(1, Math.floor(options.burst ?? Math.max(1, rate)));
    this.#toleranceMs = (burst - 1) * this.#intervalMs;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Sessions refused since start. */
  get refused(): number {
    return this.#refused;
  }

  admit(): AdmissionAnswer {
    if (this.#intervalMs === 0) return { admitted: true };
    const now = this.#now();
    const tat = Math.max(this.#tat, now);
    const admitAt = tat - this.#toleranceMs;
    if (admitAt <= now) {
      this.#tat = tat + this.#intervalMs;
      return { admitted: true };
    }
    this.#refused++;
    const slot = Math.max(this.#appointment, admitAt);
    this.#appointment = slot + this.#intervalMs;
    return { admitted: false, retryAfterMs: Math.ceil(slot - now) };
  }
}
