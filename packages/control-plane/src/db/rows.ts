/** Helpers for reading rows back: parse, don't cast. */
import { TetherError } from '@tether/contracts';
import type { z } from 'zod';

export function parseRow<T extends z.ZodType>(schema: T, row: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(row);
  if (!result.success) {
    throw new TetherError('system.internal', `Stored ${what} failed validation.`);
  }
  return result.data;
}
