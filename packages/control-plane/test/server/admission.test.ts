/**
 * The admission limit on new WebSocket sessions (server/admission.ts), on an injected clock:
 * the burst, then the rate; refused sessions get distinct slots at the admitted rate.
 */
import { describe, expect, it } from 'vitest';
import { Admission, type AdmissionAnswer } from '../../src/server/admission.js';

function clocked(ratePerSecond: number, burst?: number) {
  let now = 1_000;
  const admission = new Admission({
    ratePerSecond,
    ...(burst !== undefined ? { burst } : {}),
    now: () => now,
  });
  return { admission, advance: (ms: number) => void (now += ms) };
}

const waits = (answers: AdmissionAnswer[]): (number | null)[] =>
  answers.map((a) => (a.admitted ? null : a.retryAfterMs));

describe('WebSocket admission', () => {
  it('admits a burst at once, then one session per interval', () => {
    const { admission, advance } = clocked(10, 3);
    const first = Array.from({ length: 5 }, () => admission.admit());
    // 3 at once; the 4th may come at +100 ms (its slot), the 5th at +200 ms.
    expect(waits(first)).toEqual([null, null, null, 100, 200]);
    expect(admission.refused).toBe(2);
    advance(100);
    expect(admission.admit().admitted).toBe(true);
    expect(admission.admit().admitted).toBe(false);
    advance(1_000);
    // Quiet for a second: the whole burst is available again.
    expect(waits(Array.from({ length: 4 }, () => admission.admit()))).toEqual([
      null,
      null,
      null,
      100,
    ]);
  });

  it('refused sessions are spread over distinct slots at the admitted rate, not told one instant', () => {
    const { admission } = clocked(100);
    const answers = Array.from({ length: 300 }, () => admission.admit());
    const refused = answers.filter(
      (a): a is { admitted: false; retryAfterMs: number } => !a.admitted,
    );
    expect(answers.length - refused.length).toBe(100);
    const slots = refused.map((a) => a.retryAfterMs);
    expect(new Set(slots).size).toBe(slots.length);
    // 200 refused at 100/s: slots 10 ms apart, the last about two seconds out.
    expect(slots[0]).toBe(10);
    expect(slots[1]! - slots[0]!).toBe(10);
    expect(slots.at(-1)).toBe(2_000);
  });

  it('rate 0 admits everything', () => {
    const { admission } = clocked(0);
    for (let i = 0; i < 10_000; i++) expect(admission.admit().admitted).toBe(true);
    expect(admission.refused).toBe(0);
  });
});
