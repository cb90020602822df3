/**
 * A refusal's body formatted once with a slot for `retryAfterMs` (transport-shared.ts) is the
 * formatter's own answer for every wait, byte for byte.
 */
import { TetherError, type TetherErrorCode } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { errorShape, refusalBody } from '../../src/server/transport-shared.js';

const CASES: [TetherErrorCode, string][] = [
  ['system.unavailable', 'The server is stopping; retry after retryAfterMs.'],
  ['rate_limited', 'Too many from this address; retry after retryAfterMs.'],
];

describe('refusal bodies', () => {
  it('equal the formatted typed error for every wait', () => {
    for (const [code, message] of CASES) {
      const body = refusalBody(code, message);
      for (const retryAfterMs of [1, 250, 1_000, 29_999, 30_000, 8_765]) {
        const direct = { error: errorShape(new TetherError(code, message, { retryAfterMs })) };
        expect(body(retryAfterMs)).toBe(JSON.stringify(direct));
        expect(JSON.parse(body(retryAfterMs))).toMatchObject({
          error: { data: { tetherError: { code, details: { retryAfterMs } } } },
        });
      }
    }
  });
});
