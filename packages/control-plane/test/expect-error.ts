import { TetherError, type TetherErrorCode } from '@tether/contracts';
import { expect } from 'vitest';

/** Awaits `promise`, asserting it rejects with a TetherError of `code`; returns the error. */
export async function expectTetherError(
  promise: Promise<unknown>,
  code: TetherErrorCode,
): Promise<TetherError> {
  const outcome = await promise.then(
    (value: unknown) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok)
    throw new Error(
      `expected ${code}, but the call succeeded with ${JSON.stringify(outcome.value)}`,
    );
  expect(outcome.error).toBeInstanceOf(TetherError);
  expect((outcome.error as TetherError).code).toBe(code);
  return outcome.error as TetherError;
}
