/**
 * Answers formatted once with slots (transport-shared.ts formatOnce): an upgrade refusal's body
 * and the heartbeat fast path's acknowledgement and queue-full refusal are the formatter's (and
 * tRPC's transform's) own answer for every value, byte for byte.
 */
import { TetherError, type TetherErrorCode } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { queueFull } from '../../src/runtime-nodes/heartbeat-batch.js';
import { errorShape, formatOnce, refusalBody } from '../../src/server/transport-shared.js';
import { ackFrame, queueFullFrame, responseText } from '../../src/server/ws-heartbeat.js';

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

  it("a beat's acknowledgement and queue-full refusal equal tRPC's frames for every id", () => {
    const ids: (number | string)[] = [
      0,
      7,
      123_456_789,
      'a',
      'id "with" quotes\\',
      '8765432109870',
    ];
    for (const id of ids) {
      for (const jsonrpc of [false, true]) {
        const envelope = jsonrpc ? { id, jsonrpc: '2.0' as const } : { id };
        expect(ackFrame(id, jsonrpc)).toBe(
          responseText({ ...envelope, result: { type: 'data', data: null } }),
        );
        for (const retryAfterMs of [500, 1_000, 1_499]) {
          const error = errorShape(queueFull(retryAfterMs), 'runtimenode.heartbeat');
          expect(queueFullFrame(id, jsonrpc, retryAfterMs)).toBe(
            responseText({ ...envelope, error }),
          );
        }
      }
    }
  });

  it('formatOnce refuses a template whose slot is missing or repeated', () => {
    expect(() => formatOnce(1, () => JSON.stringify({ a: 1 }))).toThrow(/exactly once/);
    expect(() => formatOnce(1, (x) => JSON.stringify({ a: x, b: x }))).toThrow(/exactly once/);
    expect(formatOnce(2, (x, y) => JSON.stringify({ a: x, b: [y] }))('"s"', '3')).toBe(
      '{"a":"s","b":[3]}',
    );
  });
});
