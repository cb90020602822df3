import { describe, expect, it } from 'vitest';
import { Backoff, backoffCeiling, fullJitterDelay } from '../src/backoff.js';

/** A deterministic uniform source: a fixed sequence, repeated. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

/** A seeded PRNG (mulberry32) to sample many draws reproducibly. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** base 100 ms, cap 10 s, stable after 10 s, random 0.5, and a manual clock. */
function clocked() {
  let now = 0;
  const backoff = new Backoff({
    baseMs: 100,
    capMs: 10_000,
    stableAfterMs: 10_000,
    random: () => 0.5,
    now: () => now,
  });
  return { backoff, advance: (ms: number) => void (now += ms) };
}

describe('full-jitter backoff', () => {
  it('bounds: every delay d for attempt n satisfies 0 <= d <= min(cap, base * 2^n)', () => {
    const random = seeded(42);
    for (let n = 0; n < 40; n++) {
      const ceiling = Math.min(30_000, 250 * 2 ** n);
      for (let k = 0; k < 200; k++) {
        const d = fullJitterDelay(n, 250, 30_000, random);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(ceiling);
        expect(Number.isInteger(d)).toBe(true);
      }
    }
  });

  it('full jitter uses the injected random source: 0 gives 0, 0.999 gives nearly the ceiling', () => {
    expect(fullJitterDelay(0, 250, 30_000, () => 0)).toBe(0);
    expect(fullJitterDelay(5, 250, 30_000, () => 0)).toBe(0);
    // attempt 3: ceiling 250 * 8 = 2000 → floor(0.999 * 2000) = 1998
    expect(fullJitterDelay(3, 250, 30_000, () => 0.999)).toBe(1998);
    expect(fullJitterDelay(3, 250, 30_000, () => 0.5)).toBe(1000);
  });

  it('the whole window is used: draws spread from near 0 to near the ceiling (not base ± 10%)', () => {
    const random = seeded(7);
    const draws = Array.from({ length: 2000 }, () => fullJitterDelay(4, 250, 30_000, random));
    const ceiling = 4000;
    expect(Math.min(...draws)).toBeLessThan(ceiling * 0.05);
    expect(Math.max(...draws)).toBeGreaterThan(ceiling * 0.95);
    // Roughly uniform: each quarter of the window gets a fair share.
    for (let q = 0; q < 4; q++) {
      const inQuarter = draws.filter((d) => d >= (q * ceiling) / 4 && d < ((q + 1) * ceiling) / 4);
      expect(inQuarter.length).toBeGreaterThan(draws.length * 0.15);
    }
  });

  it('cap respected for large attempts (no overflow to Infinity or NaN)', () => {
    expect(backoffCeiling(7, 250, 30_000)).toBe(30_000);
    expect(backoffCeiling(1_000, 250, 30_000)).toBe(30_000);
    expect(backoffCeiling(Number.MAX_SAFE_INTEGER, 250, 30_000)).toBe(30_000);
    expect(fullJitterDelay(10_000, 250, 30_000, () => 0.999)).toBe(29_970);
    expect(fullJitterDelay(10_000, 250, 30_000, () => 0.999999)).toBeLessThanOrEqual(30_000);
  });

  it('a misbehaving random source cannot leave the window (negative, NaN, >= 1)', () => {
    expect(fullJitterDelay(2, 250, 30_000, () => -1)).toBe(0);
    expect(fullJitterDelay(2, 250, 30_000, () => Number.NaN)).toBe(0);
    expect(fullJitterDelay(2, 250, 30_000, () => 1)).toBeLessThanOrEqual(1000);
    expect(fullJitterDelay(2, 250, 30_000, () => 7)).toBeLessThanOrEqual(1000);
  });

  it("jitter: each delay is the injected random draw times that attempt's window", () => {
    const backoff = new Backoff({ baseMs: 100, capMs: 1_000, random: sequence(0.25, 0.75) });
    const delays = Array.from({ length: 6 }, () => backoff.next());
    // windows 100, 200, 400, 800, 1000 (cap), 1000
    expect(delays).toEqual([25, 150, 100, 600, 250, 750]);
  });

  it('the attempt counter grows with each failure: windows double up to the cap', () => {
    const backoff = new Backoff({ baseMs: 100, capMs: 1_000, random: () => 0.999 });
    const delays = Array.from({ length: 7 }, () => backoff.next());
    expect(delays).toEqual([99, 199, 399, 799, 999, 999, 999]);
    expect(backoff.attempt).toBe(7);
  });

  it('reset after stability: a connection up for stableAfterMs starts the counter over', () => {
    const { backoff, advance } = clocked();
    backoff.next();
    backoff.next();
    backoff.next();
    expect(backoff.attempt).toBe(3);
    backoff.connected();
    advance(10_000);
    expect(backoff.disconnected()).toBe(true);
    expect(backoff.attempt).toBe(0);
    expect(backoff.next()).toBe(50); // attempt 0 again: 0.5 * 100
  });

  it('no reset when the connection drops before it was stable (a flapping server keeps the window growing)', () => {
    const { backoff, advance } = clocked();
    backoff.next();
    backoff.next();
    backoff.connected();
    advance(9_999);
    expect(backoff.disconnected()).toBe(false);
    expect(backoff.attempt).toBe(2);
    expect(backoff.next()).toBe(200); // attempt 2: 0.5 * 400
    // A disconnect without a connection in between never resets.
    advance(60_000);
    expect(backoff.disconnected()).toBe(false);
    expect(backoff.attempt).toBe(3);
  });

  it('rejects nonsensical settings', () => {
    expect(() => new Backoff({ baseMs: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ baseMs: 500, capMs: 100 })).toThrow(RangeError);
    expect(() => new Backoff({ stableAfterMs: -1 })).toThrow(RangeError);
  });
});
