/**
 * When a lost connection ends the node for good, and with which code. A pure decision on what
 * the connection's loss and the failed call (if any) say; the node acts on it.
 */
import { TetherError, isCredentialEndReason, isTerminalCloseCode } from '@tether/contracts';
import { isTerminal } from './errors.js';
import type { LossCause } from './transport.js';

/** Why a node stopped for good on its own. */
export interface TerminationReason {
  /**
   * The registry code of the error, or `credential_revoked` when the server closed the socket
   * with a terminal close code (`WS_CLOSE.CREDENTIAL_REVOKED`) or refused a call because this
   * node's credential ended while connected (`auth.unauthenticated` with one of
   * `CREDENTIAL_END_REASONS` as `details.reason`), or `enrollment_not_saved` when
   * `onEnrolled` threw (the node does not enroll a second identity).
   */
  code: TetherError['code'] | 'credential_revoked' | 'enrollment_not_saved';
  message: string;
  /** Set when a WebSocket close code decided it. */
  closeCode?: number;
  error?: TetherError;
}

/**
 * Null when the node should reconnect. A credential that ended while connected reaches the
 * node two ways, in either order: the server refuses what is in flight (`auth.unauthenticated`
 * with the reason), then closes the socket with the terminal close code. Both end the node the
 * same way.
 */
export function terminationFor(
  cause: LossCause,
  failure: TetherError | undefined,
): TerminationReason | null {
  if (
    cause.kind === 'closed' &&
    cause.closeCode !== undefined &&
    isTerminalCloseCode(cause.closeCode)
  ) {
    const detail = cause.closeReason ? ` (${cause.closeReason})` : '';
    return {
      code: 'credential_revoked',
      closeCode: cause.closeCode,
      message: `the server closed the connection with code ${cause.closeCode}: this node's credential was revoked or is no longer valid${detail}; not reconnecting`,
    };
  }
  if (cause.kind !== 'call_failed') return null;
  const error = failure ?? cause.error ?? new TetherError(cause.code, cause.message);
  if (error.code === 'auth.unauthenticated' && isCredentialEndReason(error.details?.reason)) {
    return {
      code: 'credential_revoked',
      message: `the server refused a call: ${error.message} This node's credential was revoked or is no longer valid; not reconnecting`,
      error,
    };
  }
  if (isTerminal(error)) {
    return { code: error.code, message: `${error.code}: ${error.message}`, error };
  }
  return null;
}
