import { describe, expect, it } from 'vitest';
import { delay } from '../src/util.js';

/** Far longer than any test may run: a wait that ends is one its signal ended. */
const AN_HOUR_MS = 3_600_000;

describe('delay', () => {
  it('resolves true when the time is up', async () => {
    expect(await delay(0)).toBe(true);
  });

  it('resolves false as soon as its signal aborts, without waiting for the time', async () => {
    const controller = new AbortController();
    const waiting = delay(AN_HOUR_MS, controller.signal);
    controller.abort(new Error('stop'));
    expect(await waiting).toBe(false);
  });

  it('resolves false at once for a signal that has already aborted', async () => {
    expect(await delay(AN_HOUR_MS, AbortSignal.abort())).toBe(false);
  });
});
