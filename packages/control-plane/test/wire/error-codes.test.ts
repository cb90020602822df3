/**
 * Every code in the registry is produced over real HTTP with its registered status, on both faces
 * of the API: tRPC (`/trpc`, the error in tRPC's envelope) and REST (`/api/v1`, exactly
 * `{ "error": { code, message, details? } }`), from one table of cases (error-cases.ts). The
 * table is checked against the registry itself, so a new code without a case fails this file.
 */
import { ERROR_REGISTRY, TETHER_ERROR_CODES, type TetherErrorCode } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { startTestServer } from '../server.js';
import {
  callOver,
  ERROR_CASES,
  expectRestError,
  NOT_ON_REST,
  type Answer,
  type Surface,
} from './error-cases.js';

function expectTrpcError(answer: Answer, code: TetherErrorCode): void {
  const result = answer.trpc!;
  expect(result.error?.data.httpStatus).toBe(ERROR_REGISTRY[code].httpStatus);
  expect(result.error?.data.tetherError.message.length).toBeGreaterThan(0);
  expect(result.raw).not.toMatch(/"stack"|node_modules|\.ts:\d+/);
}

describe('every registry error code over HTTP, tRPC and REST alike', () => {
  it('the case table covers exactly the registry; only batch limits are tRPC-only', () => {
    expect(Object.keys(ERROR_CASES).sort()).toEqual([...TETHER_ERROR_CODES].sort());
    expect(NOT_ON_REST).toEqual(['request.batch_too_large']);
  });

  for (const surface of ['trpc', 'rest'] as Surface[]) {
    for (const code of TETHER_ERROR_CODES) {
      const status = ERROR_REGISTRY[code].httpStatus;
      if (surface === 'rest' && NOT_ON_REST.includes(code)) {
        it(`rest: ${code} cannot arise (no batches)`, async () => {
          await using server = await startTestServer();
          expect(await callOver(surface, server, await ERROR_CASES[code](server))).toBeNull();
        });
        continue;
      }
      it(`${surface}: ${code} → HTTP ${status}`, async () => {
        await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '3' } });
        const answer = await callOver(surface, server, await ERROR_CASES[code](server));
        expect({ status: answer?.status, code: answer?.code }).toEqual({ status, code });
        if (surface === 'trpc') expectTrpcError(answer!, code);
        else expectRestError(answer!.rest!, code);
      });
    }
  }
});
