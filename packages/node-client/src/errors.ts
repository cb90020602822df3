/**
 * Every failure the SDK surfaces is a `TetherError` with a registry code. Server errors arrive
 * as `TRPCClientError` with `data.tetherError` and are rebuilt with `TetherError.fromShape`;
 * failures that never reached the server (connection refused, socket closed, timeout) become
 * `system.unavailable` with `details.transport = true`, which is retryable like the registry says.
 */
import { TetherError, isTetherError, type TetherErrorCode } from '@tether/contracts';
import { TRPCClientError } from '@trpc/client';

interface WireShape {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

function wireShape(data: unknown): WireShape | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const shape = (data as { tetherError?: unknown }).tetherError;
  if (typeof shape !== 'object' || shape === null) return undefined;
  const { code, message, details } = shape as Record<string, unknown>;
  if (typeof code !== 'string' || typeof message !== 'string') return undefined;
  return typeof details === 'object' && details !== null
    ? { code, message, details: details as Record<string, unknown> }
    : { code, message };
}

/** A failure before any answer from the server. */
export function transportError(message: string, cause?: unknown): TetherError {
  return new TetherError('system.unavailable', message, { transport: true }, { cause });
}

/** True when the error never reached the server (as opposed to the server answering "unavailable"). */
export function isTransportError(error: TetherError): boolean {
  return error.details?.transport === true;
}

/** Maps anything a tRPC call can throw to a TetherError. */
export function toTetherError(error: unknown): TetherError {
  if (isTetherError(error)) return error;
  if (error instanceof TRPCClientError) {
    const { data, shape: envelope } = error as { data: unknown; shape: unknown };
    const shape =
      wireShape(data) ??
      wireShape(
        typeof envelope === 'object' && envelope !== null
          ? (envelope as { data?: unknown }).data
          : undefined,
      );
    if (shape) return TetherError.fromShape(shape);
    return transportError(`Could not reach the server: ${error.message}`, error);
  }
  if (error instanceof Error) {
    return transportError(`Could not reach the server: ${error.message}`, error);
  }
  return transportError('Could not reach the server.', error);
}

/** Milliseconds the server asked us to wait (`rate_limited` carries `retryAfterMs`). */
export function retryAfterMs(error: TetherError): number | undefined {
  const value = error.details?.retryAfterMs;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/**
 * Errors after which retrying with the same credential and input cannot succeed and would only
 * hammer the server: the credential is gone, is not a node's or not this node's, the attachment
 * was revoked for good, this client speaks a contract MAJOR the server does not, or the SDK's
 * own input is invalid. (A revoked credential on an open socket arrives as the WebSocket close
 * code `WS_CLOSE.CREDENTIAL_REVOKED` instead; see `isTerminalCloseCode` in the contracts.)
 */
export const TERMINAL_CODES: ReadonlySet<TetherErrorCode> = new Set<TetherErrorCode>([
  'auth.unauthenticated',
  'auth.forbidden',
  'auth.principal_mismatch',
  'runtimenode.attach_revoked',
  'version.ceiling_exceeded',
  'version.unsupported',
  'request.invalid',
]);

export function isTerminal(error: TetherError): boolean {
  return TERMINAL_CODES.has(error.code);
}

export type PairingOutcome = 'rejected' | 'expired' | 'claimed';

/**
 * A pairing that ended without a token: an operator rejected it, it expired before a decision,
 * or its token was already handed out (claimed by someone holding the same claim secret).
 */
export class PairingError extends Error {
  override readonly name = 'PairingError';
  readonly outcome: PairingOutcome;
  readonly requestId: string;

  constructor(outcome: PairingOutcome, requestId: string, message?: string) {
    super(message ?? PAIRING_MESSAGES[outcome]);
    this.outcome = outcome;
    this.requestId = requestId;
  }

  /** `pairing.rejected` | `pairing.expired` | `pairing.claimed`. */
  get code(): `pairing.${PairingOutcome}` {
    return `pairing.${this.outcome}`;
  }
}

const PAIRING_MESSAGES: Record<PairingOutcome, string> = {
  rejected: 'The pairing request was rejected by an operator.',
  expired: 'The pairing request expired before an operator approved it.',
  claimed: 'The pairing request was already claimed; its token was handed out once.',
};

export function isPairingError(value: unknown): value is PairingError {
  return value instanceof PairingError;
}
