/**
 * WebSocket admission (server/admission.ts) on an injected clock with injected signals: the
 * limit on handshakes in flight grows while the server is calm and in use, is cut under pressure
 * (loop delay, pool waiters) down to its floor, holds when idle; refused sessions get distinct
 * slots paced by the measured handshake throughput; the optional fixed caps.
 */
import { describe, expect, it } from 'vitest';
import {
  AdmissionController,
  DECREASE,
  GROWTH,
  INCREASE,
  type AdmissionAnswer,
  type AdmissionOptions,
  type Handshake,
} from '../../src/server/admission.js';

const CALM = { loopDelayMs: 0, poolWaiting: 0 };

function clocked(options: AdmissionOptions = {}) {
  let now = 1_000;
  const admission = new AdmissionController({
    now: () => now,
    random: () => 0.5,
    minLimit: 4,
    ...options,
  });
  return {
    admission,
    advance: (ms: number) => void (now += ms),
    /** Admits until refused; returns the handshakes started. */
    fill: (): Handshake[] => {
      const started: Handshake[] = [];
      while (admission.admit().admitted) started.push(admission.started());
      return started;
    },
  };
}

/** One calm step's growth (the snapshot shows the limit rounded down). */
const grow = (limit: number): number => limit * GROWTH + INCREASE;

const refusedWait = (answer: AdmissionAnswer): number => {
  if (answer.admitted) throw new Error('admitted');
  return answer.retryAfterMs;
};

describe('WebSocket admission controller', () => {
  it('admits handshakes up to the limit, then refuses until one is done', () => {
    const { admission, fill } = clocked({ initialLimit: 8 });
    const started = fill();
    expect(started).toHaveLength(8);
    expect(admission.snapshot()).toMatchObject({ limit: 8, inFlight: 8, refused: 1 });
    started[0]!.done();
    started[0]!.done(); // idempotent: one slot freed, not two
    expect(admission.admit().admitted).toBe(true);
    admission.started();
    expect(admission.admit().admitted).toBe(false);
  });

  it('grows by a quarter (plus INCREASE) while calm and in use; pressure cuts it by DECREASE', () => {
    const { admission, advance, fill } = clocked({ initialLimit: 8 });
    let limits: number[] = [];
    for (let i = 0; i < 3; i++) {
      for (const h of fill()) h.done();
      advance(100);
      admission.update(CALM);
      limits.push(admission.snapshot().limit);
    }
    const before = grow(grow(grow(8)));
    expect(limits).toEqual([grow(8), grow(grow(8)), before].map(Math.floor));
    // Proportional: each step adds more than the one before (additive growth would not).
    expect(limits[2]! - limits[1]!).toBeGreaterThan(limits[1]! - limits[0]!);
    admission.update({ loopDelayMs: 500, poolWaiting: 0 });
    const cut = before * DECREASE;
    expect(admission.snapshot().limit).toBe(Math.floor(cut));
    limits = [];
    for (let i = 0; i < 2; i++) {
      for (const h of fill()) h.done();
      advance(100);
      admission.update(CALM);
      limits.push(admission.snapshot().limit);
    }
    expect(limits).toEqual([grow(cut), grow(grow(cut))].map(Math.floor));
  });

  it('reaches a limit of 1 000 from 64 within 15 calm steps in use (1.5 s)', () => {
    const { admission, advance } = clocked({ initialLimit: 64 });
    let steps = 0;
    while (admission.snapshot().limit < 1_000 && steps < 100) {
      // In use: handshakes in flight reach the limit, and an upgrade is refused.
      const held: Handshake[] = [];
      while (admission.admit().admitted) held.push(admission.started());
      advance(100);
      admission.update(CALM);
      for (const h of held) h.done();
      steps++;
    }
    expect(steps).toBeLessThanOrEqual(15);
  });

  it('a late loop while the process itself is nearly idle (other processes hold the cores) is not pressure', () => {
    const { admission, advance, fill } = clocked({ initialLimit: 8 });
    for (const h of fill()) h.done();
    advance(100);
    admission.update({ loopDelayMs: 300, poolWaiting: 0, cpuCores: 0.2 });
    expect(admission.snapshot().limit).toBe(Math.floor(grow(8)));
    admission.update({ loopDelayMs: 300, poolWaiting: 0, cpuCores: 0.9 });
    expect(admission.snapshot().limit).toBe(Math.floor(grow(8) * DECREASE));
  });

  it('an idle server keeps its limit: nothing measured says it could take more', () => {
    const { admission, advance } = clocked({ initialLimit: 8 });
    for (let i = 0; i < 10; i++) {
      advance(100);
      admission.update(CALM);
    }
    expect(admission.snapshot().limit).toBe(8);
  });

  it('pool waiters or a late event loop cut the limit down to its floor, which still admits', () => {
    const { admission, advance } = clocked({ initialLimit: 32, minLimit: 4 });
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      advance(100);
      admission.update(
        i % 2 === 0 ? { loopDelayMs: 0, poolWaiting: 3 } : { loopDelayMs: 80, poolWaiting: 0 },
      );
      seen.push(admission.snapshot().limit);
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeLessThanOrEqual(seen[i - 1]!);
    expect(seen.at(-1)).toBe(4);
    const held = Array.from({ length: 4 }, () => {
      expect(admission.admit().admitted).toBe(true);
      return admission.started();
    });
    expect(admission.admit().admitted).toBe(false);
    // Pressure gone, refusals seen: the limit grows again.
    advance(100);
    admission.update(CALM);
    expect(admission.snapshot().limit).toBeGreaterThan(4);
    for (const h of held) h.done();
  });

  it('refused sessions get distinct slots paced by the measured throughput, not one instant', () => {
    const { admission, advance, fill } = clocked({ initialLimit: 10, maxHandshakes: 10 });
    // Ten steps of 100 ms, 10 handshakes completing per step, each taking 100 ms: 100/s.
    for (let i = 0; i < 10; i++) {
      const started = fill();
      advance(100);
      for (const h of started) h.done();
      admission.update(CALM);
    }
    fill();
    const throughput = admission.snapshot().throughputPerSecond;
    expect(throughput).toBeGreaterThan(50);
    const waits = Array.from({ length: 50 }, () => refusedWait(admission.admit()));
    expect(new Set(waits).size).toBe(waits.length);
    const interval = waits[1]! - waits[0]!;
    // One admission interval apart: the inverse of the pace (≥ the measured throughput).
    expect(interval).toBeLessThanOrEqual(Math.ceil(1_000 / throughput));
    expect(interval).toBeGreaterThan(0);
    for (let i = 2; i < waits.length; i++) {
      expect(Math.abs(waits[i]! - waits[i - 1]! - interval)).toBeLessThanOrEqual(1);
    }
  });

  it('a full appointment book spreads the rest over the second half of the longest wait', () => {
    let r = 0;
    const randoms = [0, 0.5, 0.999];
    const { admission, fill } = clocked({
      initialLimit: 4,
      minLimit: 4,
      maxRetryMs: 1_000,
      random: () => randoms[r++ % randoms.length]!,
    });
    fill();
    const waits = Array.from({ length: 200 }, () => refusedWait(admission.admit()));
    for (const w of waits) expect(w).toBeLessThanOrEqual(1_000);
    const late = waits.filter((w) => w >= 500);
    expect(new Set(late.slice(-3))).toEqual(new Set([500, 750, 1_000]));
  });

  it('fixed caps: TETHER_WS_MAX_HANDSHAKES bounds the limit; TETHER_WS_ADMIT_PER_SECOND the rate', () => {
    const capped = clocked({ maxHandshakes: 5 });
    expect(capped.admission.snapshot().limit).toBe(5);
    for (let i = 0; i < 5; i++) {
      for (const h of capped.fill()) h.done();
      capped.advance(100);
      capped.admission.update(CALM);
    }
    expect(capped.admission.snapshot().limit).toBe(5);

    const rated = clocked({ ratePerSecond: 10 });
    const answers = Array.from({ length: 15 }, () => rated.admission.admit());
    expect(answers.filter((a) => a.admitted)).toHaveLength(10);
    const waits = answers.filter((a) => !a.admitted).map(refusedWait);
    // Paced at the cap: 100 ms apart.
    expect(waits).toEqual([100, 200, 300, 400, 500]);
    expect(answers.at(-1)).toMatchObject({ reason: 'rate' });
  });
});
