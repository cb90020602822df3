/**
 * What an agent host records about its agents (SDK daemons): per agent a handful of
 * instants in typed arrays (10 000 agents cost a few hundred kilobytes), one entry per finished
 * connection attempt, and counters.
 */
import type { LoopDelay } from '@tether/node-client';
import { count } from './ipc.js';

/** Distinct causes kept by name; the rest are counted as `other`. */
const MAX_CAUSES = 40;

/** Counts `key` into `map` (past MAX_CAUSES distinct keys, as `other`); returns the key counted. */
export function countInto(map: Record<string, number>, key: string, n = 1): string {
  if (!(key in map) && Object.keys(map).length >= MAX_CAUSES) key = 'other';
  count(map, key, n);
  return key;
}

export type FleetTracker = ReturnType<typeof fleetTracker>;
export type AgentLog = ReturnType<FleetTracker['log']>;

/** How many agents have this instant. */
const reached = (values: Float64Array): number => values.filter((v) => !Number.isNaN(v)).length;
const instants = (values: Float64Array): (number | null)[] =>
  Array.from(values, (v) => (Number.isNaN(v) ? null : v));

export function fleetTracker(n: number) {
  // Per agent, epoch ms (NaN: not yet): started, first online, the attempt in flight, first lost
  // after the mark, online again after that.
  const [startAt, firstOnlineAt, attemptAt, lostAt, backAt] = Array.from({ length: 5 }, () =>
    new Float64Array(n).fill(NaN),
  ) as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
  const online = new Uint8Array(n);
  /** Every finished attempt: its start, and `ok`, `refused`, `deferred` or the failure's cause. */
  const attempts: [number, string][] = [];
  const failureCauses: Record<string, number> = {};
  const counts = {
    disconnectsAfterBack: 0,
    disconnectCauses: {} as Record<string, number>,
    beatsOk: 0,
    beatFailures: {} as Record<string, number>,
    terminations: {} as Record<string, number>,
  };
  let markAt = Infinity;
  const finishAttempt = (i: number, outcome: string): void => {
    if (Number.isNaN(attemptAt[i]!)) return;
    attempts.push([attemptAt[i]!, outcome]);
    attemptAt[i] = NaN;
  };
  return {
    /** The restart phase begins: losses and beats from now on are the restart's. */
    mark(at: number): void {
      markAt = at;
    },
    started(i: number, at: number): void {
      startAt[i] = at;
    },
    connecting(i: number, at: number): void {
      attemptAt[i] = at;
    },
    /** The attempt in flight succeeded (attached). */
    connected: (i: number): void => finishAttempt(i, 'ok'),
    /** `refused`: no server listening; `deferred`: told when to come back; `failed`: `cause`. */
    connectFailed(i: number, cause: string, how: 'refused' | 'deferred' | 'failed'): void {
      finishAttempt(i, how === 'failed' ? countInto(failureCauses, cause) : how);
    },
    online(i: number, at: number): void {
      // An attaching agent's attempt already ended at attach; a beating one's ends here.
      finishAttempt(i, 'ok');
      online[i] = 1;
      if (Number.isNaN(firstOnlineAt[i]!)) firstOnlineAt[i] = at;
      if (!Number.isNaN(lostAt[i]!) && Number.isNaN(backAt[i]!)) backAt[i] = at;
    },
    /** An established connection was lost, for `cause`. */
    disconnected(i: number, at: number, cause: string): void {
      online[i] = 0;
      if (at < markAt) return;
      countInto(counts.disconnectCauses, cause);
      if (Number.isNaN(lostAt[i]!)) lostAt[i] = at;
      else if (!Number.isNaN(backAt[i]!)) counts.disconnectsAfterBack++;
    },
    terminated(i: number, reason: string): void {
      online[i] = 0;
      countInto(counts.terminations, reason);
    },
    /** A beat answered: `error` null when acknowledged, else its code. */
    beat(error: string | null): void {
      if (Date.now() < markAt) return;
      if (error === null) counts.beatsOk++;
      else countInto(counts.beatFailures, error);
    },
    /** Agents online now, and online again after losing their connection after the mark. */
    status: () => ({ online: online.reduce((a, b) => a + b, 0), back: reached(backAt) }),
    /** The host's record (instants: epoch ms, null: never); `loopDelay` since the mark. */
    log: (rssBytes: number, loopDelay: LoopDelay) => ({
      startAt: instants(startAt),
      firstOnlineAt: instants(firstOnlineAt),
      lostAt: instants(lostAt),
      backAt: instants(backAt),
      attempts,
      pending: reached(attemptAt),
      ...counts,
      rssBytes,
      loopDelay,
    }),
  };
}
