import { describe, expect, it } from 'vitest';
import {
  CONTRACT_VERSION,
  EventEnvelopeVersion,
  InvalidVersionError,
  SUPPORTED_CONTRACT_MAJORS,
  VERSION_MAX_LENGTH,
  compareEventEnvelopeVersion,
  isEventEnvelopeVersion,
  parseEventEnvelopeVersion,
} from '../src/index.js';

const TWO_64 = (2n ** 64n).toString(); // 18446744073709551616

/** Strings that must never be accepted as a version. */
const MALFORMED = [
  '',
  ' ',
  '1',
  '1.',
  '.1',
  '.',
  '1..0',
  '1.0.0',
  '01.0',
  '1.01',
  '00.0',
  '0.00',
  '+1.0',
  '-1.0',
  '1.-0',
  '1.+0',
  ' 1.0',
  '1.0 ',
  '1 .0',
  '1.0\n',
  '\t1.0',
  'v1.0',
  '1.0a',
  'a.b',
  '1,0',
  '1e3.0',
  '0x1.0',
  '١.٠', // Arabic-Indic digits are not ASCII digits
  `1.${'1'.repeat(VERSION_MAX_LENGTH - 1)}`, // 65 characters
];

/** A small deterministic generator so the property tests are reproducible. */
function* generatedVersions(): Generator<string> {
  const segments = ['0', '1', '2', '9', '10', '11', '99', '100', '12345678901234567890', TWO_64];
  for (const major of segments) for (const minor of segments) yield `${major}.${minor}`;
  let seed = 0x2545f491;
  for (let i = 0; i < 40; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const major = seed % 1000;
    seed = (seed * 1103515245 + 12345) >>> 0;
    yield `${major}.${seed % 1000}`;
  }
}

/** Independent oracle: the numeric order of (major, minor). */
function oracle(a: string, b: string): -1 | 0 | 1 {
  const [am, an] = a.split('.').map(BigInt) as [bigint, bigint];
  const [bm, bn] = b.split('.').map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  if (an !== bn) return an < bn ? -1 : 1;
  return 0;
}

describe('compareEventEnvelopeVersion orders numerically, never lexically', () => {
  it('minor 9 < minor 10: "1.9" < "1.10"', () => {
    expect(compareEventEnvelopeVersion('1.9', '1.10')).toBe(-1);
    expect(compareEventEnvelopeVersion('1.10', '1.9')).toBe(1);
  });

  it('major 10 > major 9: "10.0" > "9.9"', () => {
    expect(compareEventEnvelopeVersion('10.0', '9.9')).toBe(1);
    expect(compareEventEnvelopeVersion('9.9', '10.0')).toBe(-1);
  });

  it('major dominates minor: "2.0" > "1.99"', () => {
    expect(compareEventEnvelopeVersion('2.0', '1.99')).toBe(1);
    expect(compareEventEnvelopeVersion('1.99', '2.0')).toBe(-1);
  });

  it('equal versions compare 0', () => {
    expect(compareEventEnvelopeVersion('3.4', '3.4')).toBe(0);
    expect(compareEventEnvelopeVersion('0.0', '0.0')).toBe(0);
  });

  it('numbers beyond 2^64 are compared exactly (BigInt), including ones a double cannot tell apart', () => {
    const justAbove = (2n ** 64n + 1n).toString();
    // As doubles these two are the same number; the comparator must still see the difference.
    expect(Number(justAbove)).toBe(Number(TWO_64));
    expect(compareEventEnvelopeVersion(`${justAbove}.0`, `${TWO_64}.0`)).toBe(1);
    expect(compareEventEnvelopeVersion(`1.${TWO_64}`, `1.${justAbove}`)).toBe(-1);
    expect(compareEventEnvelopeVersion(`${TWO_64}.${TWO_64}`, `${TWO_64}.${TWO_64}`)).toBe(0);
    expect(parseEventEnvelopeVersion(`${TWO_64}.7`)).toEqual({ major: 2n ** 64n, minor: 7n });
  });
});

describe('malformed versions are rejected', () => {
  it.each(MALFORMED.map((value) => [JSON.stringify(value), value] as const))(
    'rejects %s (leading zeros, wrong segment count, blanks, signs, stray characters, > 64 chars)',
    (_label, value) => {
      expect(isEventEnvelopeVersion(value)).toBe(false);
      expect(() => parseEventEnvelopeVersion(value)).toThrow(InvalidVersionError);
      expect(() => compareEventEnvelopeVersion(value, '1.0')).toThrow(InvalidVersionError);
      expect(() => compareEventEnvelopeVersion('1.0', value)).toThrow(InvalidVersionError);
    },
  );

  it('rejects non-strings', () => {
    for (const value of [1, 1.0, null, undefined, {}, ['1', '0'], 1n]) {
      expect(isEventEnvelopeVersion(value)).toBe(false);
      expect(() => parseEventEnvelopeVersion(value)).toThrow(InvalidVersionError);
    }
  });

  it('length limit: more than 64 characters rejected, exactly 64 accepted', () => {
    const exactly64 = `1.${'1'.repeat(VERSION_MAX_LENGTH - 2)}`;
    const exactly65 = `1.${'1'.repeat(VERSION_MAX_LENGTH - 1)}`;
    expect(exactly64).toHaveLength(64);
    expect(exactly65).toHaveLength(65);
    expect(isEventEnvelopeVersion(exactly64)).toBe(true);
    expect(EventEnvelopeVersion.safeParse(exactly64).success).toBe(true);
    expect(compareEventEnvelopeVersion(exactly64, '1.0')).toBe(1);
    expect(isEventEnvelopeVersion(exactly65)).toBe(false);
    expect(EventEnvelopeVersion.safeParse(exactly65).success).toBe(false);
  });

  it('CONTRACT_VERSION is itself a valid version', () => {
    expect(isEventEnvelopeVersion(CONTRACT_VERSION)).toBe(true);
  });
});

describe('the Zod schema and the predicate agree', () => {
  it('EventEnvelopeVersion.safeParse succeeds exactly when isEventEnvelopeVersion is true', () => {
    const candidates = [
      ...MALFORMED,
      ...generatedVersions(),
      `1.${'1'.repeat(62)}`,
      '0.0',
      1,
      null,
    ];
    let accepted = 0;
    for (const value of candidates) {
      const viaZod = EventEnvelopeVersion.safeParse(value).success;
      expect(viaZod, JSON.stringify(value)).toBe(isEventEnvelopeVersion(value));
      if (viaZod) accepted += 1;
    }
    // Both verdicts occur, so agreement is not vacuous.
    expect(accepted).toBeGreaterThan(100);
    expect(accepted).toBeLessThan(candidates.length);
  });
});

describe('the comparator is a total order on a generated set', () => {
  const versions = [...generatedVersions()];

  it('agrees with the numeric (major, minor) order', () => {
    const wrong: string[] = [];
    for (const a of versions) {
      for (const b of versions) {
        if (compareEventEnvelopeVersion(a, b) !== oracle(a, b)) wrong.push(`${a} vs ${b}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('is antisymmetric: compare(a, b) === -compare(b, a), and 0 only for identical strings', () => {
    const wrong: string[] = [];
    for (const a of versions) {
      for (const b of versions) {
        const ab = compareEventEnvelopeVersion(a, b);
        const ba = compareEventEnvelopeVersion(b, a);
        if (ab !== -ba || (ab === 0) !== (a === b)) wrong.push(`${a} vs ${b}: ${ab}, ${ba}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('is transitive: a <= b and b <= c imply a <= c', () => {
    const sample = versions.slice(0, 60);
    const wrong: string[] = [];
    let chains = 0;
    for (const a of sample) {
      for (const b of sample) {
        if (compareEventEnvelopeVersion(a, b) > 0) continue;
        for (const c of sample) {
          if (compareEventEnvelopeVersion(b, c) > 0) continue;
          chains += 1;
          if (compareEventEnvelopeVersion(a, c) > 0) wrong.push(`${a} <= ${b} <= ${c}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(chains).toBeGreaterThan(1000);
  });
});

describe('the MAJORs a server of this contract serves', () => {
  it('reach up to CONTRACT_VERSION’s MAJOR and no further, and form a range', () => {
    const major = parseEventEnvelopeVersion(CONTRACT_VERSION).major;
    expect(BigInt(SUPPORTED_CONTRACT_MAJORS.max)).toBe(major);
    expect(SUPPORTED_CONTRACT_MAJORS.min).toBeLessThanOrEqual(SUPPORTED_CONTRACT_MAJORS.max);
    expect(Number.isSafeInteger(SUPPORTED_CONTRACT_MAJORS.min)).toBe(true);
  });
});
