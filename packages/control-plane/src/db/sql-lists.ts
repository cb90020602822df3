/** SQL literal lists of the contract's fixed sets (states, roles), for `x IN (…)` in statements. */
import { ACTIVE_ATTACHMENT_STATES } from '@tether/contracts';

/** `('a', 'b')` from a fixed set of identifiers (never user input: no quoting beyond this). */
export function sqlTextList(values: readonly string[]): string {
  return `(${values.map((value) => `'${value}'`).join(', ')})`;
}

/** The attachment states that count as active, as `('registering', 'online', 'degraded')`. */
export const ACTIVE_ATTACHMENT_STATES_SQL = sqlTextList(ACTIVE_ATTACHMENT_STATES);
