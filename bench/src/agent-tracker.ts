/**
 * What an agent host records about its agents, whichever kind they are: per agent a handful of
 * instants in typed arrays (10 000 agents cost a few hundred kilobytes), one entry per finished
 * connection attempt, and counters.
 */

/** Distinct causes kept by name; the rest are counted as `other`. */
const MAX_CAUSES = 40;

export const REFUSED = 'refused';
export const DEFERRED = 'deferred';
export const OK = 'ok';

export function countInto(map: Record<string, number>, key: string, n = 1): void {
  if (!(key in map) && Object.keys(map).length >= MAX_CAUSES) key = 'other';
  map[key] = (map[key] ?? 0) + n;
}

export type HostStatus = ReturnType<FleetTracker['status']>;
export type AgentLog = ReturnType<FleetTracker['log']>;

const instants = (values: Float64Array): (number | null)[] =>
  Array.from(values, (v) => (Number.isNaN(v) ? null : v));

export class FleetTracker {
  readonly #startAt: Float64Array;
  readonly #firstOnlineAt: Float64Array;
  /** The start of the agent's attempt in flight (NaN: none). */
  readonly #attemptAt: Float64Array;
  readonly #lostAt: Float64Array;
  readonly #backAt: Float64Array;
  readonly #online: Uint8Array;
  readonly #attempts: [number, string][] = [];
  #markAt = Infinity;
  #onlineCount = 0;
  #backCount = 0;
  #disconnectsAfterBack = 0;
  readonly #disconnectCauses: Record<string, number> = {};
  #beatsOk = 0;
  #beatsFailed = 0;
  readonly #beatFailures: Record<string, number> = {};
  #terminated = 0;
  readonly #terminations: Record<string, number> = {};
  #causes = new Set<string>();

  /** Called when an agent is online for the first time (the cold start's pacing). */
  onFirstOnline: (() => void) | null = null;

  constructor(n: number) {
    const instants = (): Float64Array => new Float64Array(n).fill(NaN);
    this.#startAt = instants();
    this.#firstOnlineAt = instants();
    this.#attemptAt = instants();
    this.#lostAt = instants();
    this.#backAt = instants();
    this.#online = new Uint8Array(n);
  }

  /** The restart phase begins: losses from now on are the restart's. */
  mark(at: number): void {
    this.#markAt = at;
  }

  started(i: number, at: number): void {
    this.#startAt[i] = at;
  }

  connecting(i: number, at: number): void {
    this.#attemptAt[i] = at;
  }

  /** The attempt in flight succeeded (attached, or first beat acknowledged). */
  connected(i: number): void {
    this.#finishAttempt(i, OK);
  }

  /**
   * The attempt in flight failed: `refused` at TCP level (no server listening), `deferred` by the
   * server with a time to come back, otherwise `failed` with `cause`.
   */
  connectFailed(i: number, cause: string, how: 'refused' | 'deferred' | 'failed'): void {
    if (how !== 'failed') return this.#finishAttempt(i, how);
    // Past the cap every new cause is `other`.
    if (!this.#causes.has(cause) && this.#causes.size >= MAX_CAUSES) cause = 'other';
    this.#causes.add(cause);
    this.#finishAttempt(i, cause);
  }

  #finishAttempt(i: number, outcome: string): void {
    const started = this.#attemptAt[i]!;
    if (Number.isNaN(started)) return;
    this.#attemptAt[i] = NaN;
    this.#attempts.push([started, outcome]);
  }

  #offline(i: number): void {
    if (this.#online[i] === 0) return;
    this.#online[i] = 0;
    this.#onlineCount--;
  }

  online(i: number, at: number): void {
    // An SDK agent's attempt already ended at attach; a raw agent's ends at its first ack.
    this.connected(i);
    if (this.#online[i] === 0) {
      this.#online[i] = 1;
      this.#onlineCount++;
    }
    if (Number.isNaN(this.#firstOnlineAt[i]!)) {
      this.#firstOnlineAt[i] = at;
      this.onFirstOnline?.();
    }
    if (!Number.isNaN(this.#lostAt[i]!) && Number.isNaN(this.#backAt[i]!)) {
      this.#backAt[i] = at;
      this.#backCount++;
    }
  }

  /** An established connection was lost, for `cause`. */
  disconnected(i: number, at: number, cause: string): void {
    this.#offline(i);
    if (at < this.#markAt) return;
    countInto(this.#disconnectCauses, cause);
    if (Number.isNaN(this.#lostAt[i]!)) this.#lostAt[i] = at;
    else if (!Number.isNaN(this.#backAt[i]!)) this.#disconnectsAfterBack++;
  }

  terminated(i: number, reason: string): void {
    this.#offline(i);
    this.#terminated++;
    countInto(this.#terminations, reason);
  }

  /** A beat answered: `error` null when acknowledged, else its code. Counted after the mark. */
  beat(error: string | null): void {
    if (Date.now() < this.#markAt) return;
    if (error === null) this.#beatsOk++;
    else {
      this.#beatsFailed++;
      countInto(this.#beatFailures, error);
    }
  }

  /** Agents online now, and online again after losing their connection after the mark. */
  status() {
    return { online: this.#onlineCount, back: this.#backCount };
  }

  /**
   * The host's record: per agent its instants (epoch ms, null: never) — started, first online,
   * first lost after the mark, online again — then every finished attempt with its outcome, and
   * counters; `loopDelay` is the host's own event-loop delay since the mark (its error bar).
   */
  log(rssBytes: number, loopDelay: { p50Ms: number; p99Ms: number; maxMs: number }) {
    return {
      startAt: instants(this.#startAt),
      firstOnlineAt: instants(this.#firstOnlineAt),
      lostAt: instants(this.#lostAt),
      backAt: instants(this.#backAt),
      attempts: this.#attempts,
      pending: this.#attemptAt.filter((at) => !Number.isNaN(at)).length,
      disconnectsAfterBack: this.#disconnectsAfterBack,
      disconnectCauses: this.#disconnectCauses,
      beatsOk: this.#beatsOk,
      beatsFailed: this.#beatsFailed,
      beatFailures: this.#beatFailures,
      terminated: this.#terminated,
      terminations: this.#terminations,
      rssBytes,
      loopDelay,
    };
  }
}
