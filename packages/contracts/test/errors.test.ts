import { describe, expect, it } from 'vitest';
import {
  ERROR_REGISTRY,
  TETHER_ERROR_CODES,
  TRPC_CODE_HTTP_STATUS,
  TetherError,
  errorSpec,
  isTetherError,
  isTetherErrorCode,
  type TetherErrorCode,
} from '../src/index.js';

/**
 * The HTTP status tRPC's HTTP adapter derives from each error code, written out independently of
 * src/errors.ts so that a wrong entry there cannot prove itself right.
 */
const TRPC_HTTP_STATUS: Readonly<Record<string, number>> = {
  PARSE_ERROR: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  PAYMENT_REQUIRED: 402,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_SUPPORTED: 405,
  TIMEOUT: 408,
  CONFLICT: 409,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE_CONTENT: 422,
  TOO_MANY_REQUESTS: 429,
  CLIENT_CLOSED_REQUEST: 499,
  INTERNAL_SERVER_ERROR: 500,
  NOT_IMPLEMENTED: 501,
  BAD_GATEWAY: 502,
  SERVICE_UNAVAILABLE: 503,
  GATEWAY_TIMEOUT: 504,
};

/** The codes and statuses the registry must have at least (clients rely on them). */
const REQUIRED_CODES: ReadonlyArray<readonly [string, number]> = [
  ['auth.unauthenticated', 401],
  ['auth.principal_mismatch', 403],
  ['runtimenode.permission_denied', 403],
  ['runtimenode.attach_conflict', 409],
  ['runtimenode.attach_revoked', 409],
  ['runtimenode.capabilityupdate_conflict', 409],
  ['version.floor_exceeded', 409],
  ['version.ceiling_exceeded', 409],
  ['version.unsupported', 409],
  ['session.floor_not_monotonic', 409],
  ['request.invalid', 400],
  ['request.too_large', 413],
  ['rate_limited', 429],
  ['system.unavailable', 503],
];

describe('error registry', () => {
  it('every code: httpStatus equals the status tRPC derives from its tRPC code', () => {
    const mismatched = TETHER_ERROR_CODES.filter((code) => {
      const spec = ERROR_REGISTRY[code];
      return TRPC_HTTP_STATUS[spec.trpcCode] !== spec.httpStatus;
    });
    expect(mismatched).toEqual([]);
    expect(TETHER_ERROR_CODES.length).toBeGreaterThanOrEqual(REQUIRED_CODES.length);
  });

  it('TRPC_CODE_HTTP_STATUS matches tRPC for every tRPC code it lists', () => {
    for (const [trpcCode, status] of Object.entries(TRPC_CODE_HTTP_STATUS)) {
      expect(TRPC_HTTP_STATUS[trpcCode], trpcCode).toBe(status);
    }
  });

  it.each(REQUIRED_CODES)('minimum code %s exists with HTTP status %i', (code, status) => {
    expect(isTetherErrorCode(code)).toBe(true);
    expect(errorSpec(code as TetherErrorCode).httpStatus).toBe(status);
  });

  it('every description is one non-empty line', () => {
    for (const code of TETHER_ERROR_CODES) {
      const { description } = ERROR_REGISTRY[code];
      expect(description.trim(), code).not.toBe('');
      expect(description, code).not.toMatch(/[\r\n\u2028\u2029]/);
    }
  });

  it('TETHER_ERROR_CODES lists exactly the registry keys', () => {
    expect([...TETHER_ERROR_CODES].sort()).toEqual(Object.keys(ERROR_REGISTRY).sort());
  });

  it('isTetherErrorCode accepts only registry codes, not inherited property names', () => {
    expect(isTetherErrorCode('request.invalid')).toBe(true);
    for (const value of ['toString', '__proto__', 'constructor', 'REQUEST.INVALID', '', 42, null]) {
      expect(isTetherErrorCode(value)).toBe(false);
    }
  });
});

describe('TetherError', () => {
  it('round-trips through toShape/fromShape, with and without details, also via JSON', () => {
    const cases = [
      new TetherError('version.floor_exceeded', 'below the floor', { floor: '2.0', client: '1.3' }),
      new TetherError('rate_limited'),
      new TetherError('request.invalid', '', { issues: [{ path: ['nodeId'], message: 'bad' }] }),
    ];
    for (const original of cases) {
      const shape = original.toShape();
      for (const carried of [shape, JSON.parse(JSON.stringify(shape)) as typeof shape]) {
        const copy = TetherError.fromShape(carried);
        expect(copy).toBeInstanceOf(TetherError);
        expect(copy.code).toBe(original.code);
        expect(copy.message).toBe(original.message);
        expect(copy.details).toEqual(original.details);
        expect(copy.httpStatus).toBe(original.httpStatus);
        expect(copy.retryable).toBe(original.retryable);
        expect(copy.toShape()).toEqual(shape);
      }
    }
  });

  it('toShape omits details when there are none', () => {
    expect(Object.keys(new TetherError('rate_limited').toShape()).sort()).toEqual([
      'code',
      'message',
    ]);
  });

  it('defaults its message to the registry description and exposes status and retryability', () => {
    const error = new TetherError('system.unavailable');
    expect(error.message).toBe(ERROR_REGISTRY['system.unavailable'].description);
    expect(error.httpStatus).toBe(503);
    expect(error.retryable).toBe(true);
    expect(error.name).toBe('TetherError');
    expect(error).toBeInstanceOf(Error);
    expect(isTetherError(error)).toBe(true);
    expect(isTetherError(new Error('x'))).toBe(false);
    expect(isTetherError(error.toShape())).toBe(false);
  });

  it('keeps the cause it was given', () => {
    const cause = new Error('db down');
    expect(new TetherError('system.unavailable', undefined, undefined, { cause }).cause).toBe(
      cause,
    );
  });
});
