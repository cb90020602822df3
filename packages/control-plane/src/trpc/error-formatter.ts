/**
 * The single projection of errors onto the wire: every failure becomes
 * `error.data.tetherError = { code, message, details? }` with the registry's HTTP status.
 * Unknown errors become `system.internal` without internals (no stack, no SQL, no cause).
 */
import { ERROR_REGISTRY, TetherError, type TetherErrorData } from '@tether/contracts';
import { TRPCError } from '@trpc/server';
import { TRPC_ERROR_CODES_BY_KEY, type TRPC_ERROR_CODE_NUMBER } from '@trpc/server/rpc';

interface IssueLike {
  path: PropertyKey[];
  message: string;
  code?: string;
  keys?: string[];
}

/** Field paths an issue is about: for unknown keys, the keys themselves. */
function issuePaths(issue: IssueLike): string[] {
  const base = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys' && Array.isArray(issue.keys)) {
    return issue.keys.map((k) => (base ? `${base}.${k}` : k));
  }
  return [base || '(input)'];
}

function isZodErrorLike(value: unknown): value is { issues: IssueLike[] } {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { issues?: unknown }).issues) &&
    (value as { issues: unknown[] }).issues.every(
      (i) => typeof i === 'object' && i !== null && 'message' in i,
    )
  );
}

function issuesToDetails(issues: IssueLike[]): Record<string, unknown> {
  return {
    issues: issues.slice(0, 50).map((i) => ({
      path: i.path.map(String).join('.'),
      message: i.message,
      ...(i.code ? { code: i.code } : {}),
      ...(i.code === 'unrecognized_keys' ? { fields: issuePaths(i) } : {}),
    })),
  };
}

/** Maps anything thrown during a call to the TetherError the client will see. */
export function toTetherError(error: TRPCError): TetherError {
  const cause = error.cause;
  if (cause instanceof TetherError) return cause;
  switch (error.code) {
    case 'BAD_REQUEST':
      if (isZodErrorLike(cause)) {
        const fields = cause.issues.flatMap(issuePaths);
        return new TetherError(
          'request.invalid',
          `Invalid input: ${[...new Set(fields)].slice(0, 10).join(', ')}`,
          issuesToDetails(cause.issues),
        );
      }
      if (cause instanceof SyntaxError) {
        return new TetherError('request.malformed', 'The request is not valid JSON.');
      }
      return new TetherError('request.invalid', 'The request could not be read.');
    case 'PARSE_ERROR':
      return new TetherError('request.malformed', 'The request is not valid JSON.');
    case 'PAYLOAD_TOO_LARGE':
      return new TetherError('request.too_large', 'The request body exceeds the size limit.');
    case 'NOT_FOUND':
      return new TetherError('request.unknown_procedure', 'No procedure with this path exists.');
    case 'METHOD_NOT_SUPPORTED':
      return new TetherError('request.invalid', 'Queries use GET, mutations use POST.');
    case 'UNSUPPORTED_MEDIA_TYPE':
      return new TetherError('request.invalid', 'Unsupported content type; send application/json.');
    case 'CLIENT_CLOSED_REQUEST':
      return new TetherError('request.invalid', 'The client closed the request.');
    default:
      return new TetherError('system.internal', 'Internal server error.');
  }
}

/**
 * What clients receive as the error (`TRPCClientError.shape`; `.data` is `data`). It must be a
 * tRPC `TRPCErrorShape` (a JSON-RPC `code` number): otherwise `initTRPC` silently types the
 * router's errors as its default shape and typed clients cannot see `data.tetherError`.
 */
export interface TetherErrorWireShape {
  message: string;
  code: TRPC_ERROR_CODE_NUMBER;
  data: TetherErrorData;
}

export function formatError(opts: {
  error: TRPCError;
  path: string | undefined;
}): TetherErrorWireShape {
  const tether = toTetherError(opts.error);
  const spec = ERROR_REGISTRY[tether.code];
  return {
    message: tether.message,
    code: TRPC_ERROR_CODES_BY_KEY[spec.trpcCode],
    data: {
      code: spec.trpcCode,
      httpStatus: spec.httpStatus,
      path: opts.path,
      tetherError: tether.toShape(),
    },
  };
}

export { TRPCError };
