/**
 * `EventEnvelopeVersion`: "MAJOR.MINOR", each segment `0` or a non-zero-led decimal integer,
 * at most 64 characters, compared numerically (BigInt, so any length is exact), never lexically.
 */
import { z } from 'zod';

export const VERSION_MAX_LENGTH = 64;
const VERSION_PATTERN = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$/;

export const EventEnvelopeVersion = z
  .string()
  .max(VERSION_MAX_LENGTH)
  .regex(VERSION_PATTERN, 'must be MAJOR.MINOR with non-negative integers and no leading zeros')
  .brand<'EventEnvelopeVersion'>();
export type EventEnvelopeVersion = z.infer<typeof EventEnvelopeVersion>;

/** The contract version this package describes; the server advertises it. */
export const CONTRACT_VERSION = '2.0' as EventEnvelopeVersion;

export class InvalidVersionError extends TypeError {
  override readonly name = 'InvalidVersionError';
  readonly value: unknown;
  // No parameter properties: this package is bundled into @tether/client, whose consumers may
  // compile with `erasableSyntaxOnly`.
  constructor(value: unknown) {
    super(`not a MAJOR.MINOR version: ${JSON.stringify(String(value)).slice(0, 80)}`);
    this.value = value;
  }
}

export interface ParsedVersion {
  readonly major: bigint;
  readonly minor: bigint;
}

export function isEventEnvelopeVersion(value: unknown): value is EventEnvelopeVersion {
  return (
    typeof value === 'string' && value.length <= VERSION_MAX_LENGTH && VERSION_PATTERN.test(value)
  );
}

/** Parses a version or throws `InvalidVersionError`; never guesses. */
export function parseEventEnvelopeVersion(value: unknown): ParsedVersion {
  if (!isEventEnvelopeVersion(value)) throw new InvalidVersionError(value);
  const match = VERSION_PATTERN.exec(value);
  // The pattern matched above, so both groups exist.
  return { major: BigInt(match![1]!), minor: BigInt(match![2]!) };
}

/** -1 if a < b, 0 if equal, 1 if a > b. Throws `InvalidVersionError` on a malformed operand. */
export function compareEventEnvelopeVersion(a: string, b: string): -1 | 0 | 1 {
  const x = parseEventEnvelopeVersion(a);
  const y = parseEventEnvelopeVersion(b);
  if (x.major !== y.major) return x.major < y.major ? -1 : 1;
  if (x.minor !== y.minor) return x.minor < y.minor ? -1 : 1;
  return 0;
}
