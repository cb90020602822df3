/**
 * Typed error checks for calls made with the Tether client. Every error the server sends carries
 * `data.tetherError = { code, message, details? }`, `code` from the closed registry.
 */
import {
  isTetherErrorCode,
  type TetherErrorCode,
  type TetherErrorData,
  type TetherErrorShape,
} from '@tether/contracts';
import { isTRPCClientError, type TRPCClientError } from '@trpc/client';
import type { AppRouter } from './router.js';

/** A call's error that the server answered with registry code `C`. */
export type TetherClientError<C extends TetherErrorCode = TetherErrorCode> =
  TRPCClientError<AppRouter> & {
    readonly data: TetherErrorData & { tetherError: TetherErrorShape & { code: C } };
  };

/**
 * True when `error` is the server's answer to a call, with a registry code (any, or `code`):
 * then `error.data.tetherError.code` is typed. False for failures that never got an answer
 * (network errors, an aborted call) and for codes this client version does not know.
 */
export function isTetherError(error: unknown): error is TetherClientError;
export function isTetherError<C extends TetherErrorCode>(
  error: unknown,
  code: C,
): error is TetherClientError<C>;
export function isTetherError(error: unknown, code?: TetherErrorCode): boolean {
  if (!isTRPCClientError(error)) return false;
  const data: unknown = error.data;
  if (typeof data !== 'object' || data === null) return false;
  const shape = (data as { tetherError?: unknown }).tetherError;
  if (typeof shape !== 'object' || shape === null) return false;
  const actual = (shape as { code?: unknown }).code;
  return isTetherErrorCode(actual) && (code === undefined || actual === code);
}
