/**
 * What an agent host records about its agents, whichever kind they are: per agent a handful of
 * numbers in typed arrays (10 000 agents cost a few hundred kilobytes, and nothing grows per
 * event except one entry per finished connection attempt), turned into histograms only when the
 * orchestrator asks for the report — by then it knows when SIGTERM was sent and when the new
 * server process began to listen.
 *
 * An attempt succeeds when the agent is attached (SDK) or its first beat is acknowledged (raw),
 * and fails when the agent gives it up before that (closed, timed out, refused by the server);
 * an attempt refused at TCP level (ECONNREFUSED: nothing listens on the port, the server is
 * down) is counted apart from failures of attempts that reached a server, and so is one the
 * server deferred with a time to come back (its admission limit). Online is the SDK's
 * `online` state (attached and declared), or the raw agent's first acknowledged beat.
 */
import { Histogram, type HistogramData } from './histogram.js';

/** Reference instants of the restart, known to the orchestrator only afterwards. */
export interface RestartRefs {
  sigtermAt: number;
  /** The new process accepted a TCP connection on the port (null: it never did). */
  listeningAt: number | null;
}

export interface HostStatus {
  /** Agents online now. */
  online: number;
  /** Agents online again after losing their connection in the restart phase. */
  back: number;
  /** Agents that stopped for good (terminal error): must stay 0. */
  terminated: number;
}

/** Connection attempts that ended (attached/acknowledged, or failed) in one phase. */
export interface AttemptCounts {
  attempts: number;
  /** Refused at TCP level (ECONNREFUSED): no process listened on the port. */
  refused: number;
  /**
   * Answered by the server with a time to come back (Tether's admission limit: 503 with
   * `retryAfterMs`): flow control the agent obeys, counted apart from failures.
   */
  deferred: number;
  /** Failed otherwise, after reaching a server (timeouts, closes, 503, error answers). */
  failed: number;
  /** Those failures' causes (transport message, close code or Tether error code), counted. */
  causes: Record<string, number>;
}

export interface ConnectPhaseReport {
  /** Agents online at least once. */
  online: number;
  firstOnlineAt: number | null;
  lastOnlineAt: number | null;
  /** Per agent: its start → first online. */
  startToOnline: HistogramData;
  attempts: AttemptCounts;
}

export interface RestartPhaseReport {
  /** Agents that lost their connection after the mark. */
  lost: number;
  /** Of them, online again. */
  back: number;
  firstBackAt: number | null;
  lastBackAt: number | null;
  /** Per agent: SIGTERM → its connection lost (how fast the shutdown reached it). */
  lostSinceSigterm: HistogramData;
  /** Per agent: SIGTERM → online again. */
  sinceSigterm: HistogramData;
  /** Per agent: new process listening → online again. */
  sinceListening: HistogramData;
  /** Per agent: its own connection loss → online again. */
  downtime: HistogramData;
  /** Attempts started after the mark. */
  attempts: AttemptCounts;
  /** Attempts still in flight when the report was taken. */
  pending: number;
  /** Connections lost again after an agent was back (an unstable recovery). */
  disconnectsAfterBack: number;
  /** Why established connections were lost after the mark (SIGTERM's, and any later). */
  disconnectCauses: Record<string, number>;
  beatsOk: number;
  beatsFailed: number;
  beatFailures: Record<string, number>;
}

export interface HostReport {
  agents: number;
  connect: ConnectPhaseReport;
  restart: RestartPhaseReport;
  terminated: number;
  /** Termination reasons (e.g. `credential_revoked`) and their counts. */
  terminations: Record<string, number>;
  rssBytes: number;
  /**
   * This host's event-loop delay since the mark (ms): how late its agents may have seen and
   * timed things in the restart phase — the client side's own error bar.
   */
  loopDelay: { p50Ms: number; p99Ms: number; maxMs: number };
}

/** Distinct failure causes kept by name; the rest are counted as `other`. */
const MAX_CAUSES = 40;
const OK = -1;
const REFUSED = -2;
const DEFERRED = -3;

/** How an attempt that did not succeed ended. */
export type AttemptFailure = 'refused' | 'deferred' | 'failed';

function countInto(map: Record<string, number>, key: string): void {
  if (!(key in map) && Object.keys(map).length >= MAX_CAUSES) key = 'other';
  map[key] = (map[key] ?? 0) + 1;
}

export class FleetTracker {
  readonly #n: number;
  /** Start per agent (epoch ms; NaN: not started). */
  readonly #startAt: Float64Array;
  readonly #firstOnlineAt: Float64Array;
  /** The start of the agent's attempt in flight (NaN: none). */
  readonly #attemptAt: Float64Array;
  /** Restart phase: first loss after the mark, first online after that loss. */
  readonly #lostAt: Float64Array;
  readonly #backAt: Float64Array;
  readonly #online: Uint8Array;
  /** Finished attempts: start time and outcome (OK, REFUSED, or a failure cause id ≥ 0). */
  readonly #attemptStarts: number[] = [];
  readonly #attemptCauses: number[] = [];
  readonly #causeIds = new Map<string, number>();
  readonly #causeNames: string[] = [];
  #markAt = Infinity;
  #onlineCount = 0;
  #backCount = 0;
  #terminated = 0;
  readonly #terminations: Record<string, number> = {};
  #disconnectsAfterBack = 0;
  /** Restart phase: why established connections were lost. */
  readonly #disconnectCauses: Record<string, number> = {};
  #beatsOk = 0;
  #beatsFailed = 0;
  readonly #beatFailures: Record<string, number> = {};

  /** Called when an agent is online for the first time (the cold start's pacing). */
  onFirstOnline: (() => void) | null = null;

  constructor(n: number) {
    this.#n = n;
    this.#startAt = new Float64Array(n).fill(NaN);
    this.#firstOnlineAt = new Float64Array(this.#n).fill(NaN);
    this.#attemptAt = new Float64Array(this.#n).fill(NaN);
    this.#lostAt = new Float64Array(this.#n).fill(NaN);
    this.#backAt = new Float64Array(this.#n).fill(NaN);
    this.#online = new Uint8Array(this.#n);
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
   * The attempt in flight failed: `refused` at TCP level (no server listening), `deferred` by
   * the server with a time to come back, otherwise `failed` with `cause`.
   */
  connectFailed(i: number, cause: string, how: AttemptFailure): void {
    this.#finishAttempt(
      i,
      how === 'refused' ? REFUSED : how === 'deferred' ? DEFERRED : this.#causeId(cause),
    );
  }

  #causeId(cause: string): number {
    const known = this.#causeIds.get(cause);
    if (known !== undefined) return known;
    // Past the cap every new cause is `other` (which itself may take one slot more).
    const name = this.#causeNames.length >= MAX_CAUSES ? 'other' : cause;
    let id = this.#causeIds.get(name);
    if (id === undefined) {
      id = this.#causeNames.length;
      this.#causeNames.push(name);
      this.#causeIds.set(name, id);
    }
    return id;
  }

  #finishAttempt(i: number, causeId: number): void {
    const started = this.#attemptAt[i]!;
    if (Number.isNaN(started)) return;
    this.#attemptAt[i] = NaN;
    this.#attemptStarts.push(started);
    this.#attemptCauses.push(causeId);
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
    if (this.#online[i] === 1) {
      this.#online[i] = 0;
      this.#onlineCount--;
    }
    if (at < this.#markAt) return;
    countInto(this.#disconnectCauses, cause);
    if (Number.isNaN(this.#lostAt[i]!)) this.#lostAt[i] = at;
    else if (!Number.isNaN(this.#backAt[i]!)) this.#disconnectsAfterBack++;
  }

  terminated(i: number, reason: string): void {
    if (this.#online[i] === 1) {
      this.#online[i] = 0;
      this.#onlineCount--;
    }
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

  status(): HostStatus {
    return { online: this.#onlineCount, back: this.#backCount, terminated: this.#terminated };
  }

  #attempts(from: number, to: number): AttemptCounts {
    const counts: AttemptCounts = { attempts: 0, refused: 0, deferred: 0, failed: 0, causes: {} };
    for (let k = 0; k < this.#attemptStarts.length; k++) {
      const start = this.#attemptStarts[k]!;
      if (start < from || start >= to) continue;
      counts.attempts++;
      const outcome = this.#attemptCauses[k]!;
      if (outcome === REFUSED) counts.refused++;
      else if (outcome === DEFERRED) counts.deferred++;
      else if (outcome >= 0) {
        counts.failed++;
        countInto(counts.causes, this.#causeNames[outcome]!);
      }
    }
    return counts;
  }

  #connectPhase(): ConnectPhaseReport {
    const startToOnline = new Histogram();
    let online = 0;
    let first = Infinity;
    let last = -Infinity;
    for (let i = 0; i < this.#n; i++) {
      const at = this.#firstOnlineAt[i]!;
      if (Number.isNaN(at)) continue;
      online++;
      first = Math.min(first, at);
      last = Math.max(last, at);
      startToOnline.recordMs(at - this.#startAt[i]!);
    }
    return {
      online,
      firstOnlineAt: online > 0 ? first : null,
      lastOnlineAt: online > 0 ? last : null,
      startToOnline: startToOnline.toData(),
      attempts: this.#attempts(-Infinity, this.#markAt),
    };
  }

  #restartPhase(refs: RestartRefs): RestartPhaseReport {
    const sinceSigterm = new Histogram();
    const sinceListening = new Histogram();
    const downtime = new Histogram();
    const lostSinceSigterm = new Histogram();
    let lost = 0;
    let first = Infinity;
    let last = -Infinity;
    for (let i = 0; i < this.#n; i++) {
      const lostAt = this.#lostAt[i]!;
      if (Number.isNaN(lostAt)) continue;
      lost++;
      lostSinceSigterm.recordMs(Math.max(0, lostAt - refs.sigtermAt));
      const back = this.#backAt[i]!;
      if (Number.isNaN(back)) continue;
      first = Math.min(first, back);
      last = Math.max(last, back);
      sinceSigterm.recordMs(back - refs.sigtermAt);
      if (refs.listeningAt !== null) {
        sinceListening.recordMs(Math.max(0, back - refs.listeningAt));
      }
      downtime.recordMs(back - lostAt);
    }
    let pending = 0;
    for (let i = 0; i < this.#n; i++) if (!Number.isNaN(this.#attemptAt[i]!)) pending++;
    return {
      lost,
      back: this.#backCount,
      firstBackAt: this.#backCount > 0 ? first : null,
      lastBackAt: this.#backCount > 0 ? last : null,
      lostSinceSigterm: lostSinceSigterm.toData(),
      sinceSigterm: sinceSigterm.toData(),
      sinceListening: sinceListening.toData(),
      downtime: downtime.toData(),
      attempts: this.#attempts(this.#markAt, Infinity),
      pending,
      disconnectsAfterBack: this.#disconnectsAfterBack,
      disconnectCauses: { ...this.#disconnectCauses },
      beatsOk: this.#beatsOk,
      beatsFailed: this.#beatsFailed,
      beatFailures: { ...this.#beatFailures },
    };
  }

  report(refs: RestartRefs, rssBytes: number, loopDelay: HostReport['loopDelay']): HostReport {
    return {
      agents: this.#n,
      connect: this.#connectPhase(),
      restart: this.#restartPhase(refs),
      terminated: this.#terminated,
      terminations: { ...this.#terminations },
      rssBytes,
      loopDelay,
    };
  }
}
