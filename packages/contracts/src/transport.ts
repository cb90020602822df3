/**
 * WebSocket close codes the server uses, shared with every client. Codes in the 4000–4999
 * range are application-defined (RFC 6455 §7.4.2).
 */
export const WS_CLOSE = {
  /**
   * The credential this socket authenticated with was revoked or expired, or the node itself
   * was revoked: do not reconnect with it.
   */
  CREDENTIAL_REVOKED: 4401,
  /**
   * The socket did not authenticate in time: no connectionParams within the server's deadline,
   * or it holds no credential and made no call for the anonymous idle time. Reconnecting is fine
   * (send connectionParams at once; open a socket without a credential only to call).
   */
  UNAUTHENTICATED_TIMEOUT: 4408,
} as const;

/** True when a close code tells the client to stop reconnecting. */
export function isTerminalCloseCode(code: number): boolean {
  return code === WS_CLOSE.CREDENTIAL_REVOKED;
}

/**
 * Why a credential ended while in use, as `details.reason` of the `auth.unauthenticated` error a
 * stream or call on its socket ends with (just before the socket is closed with
 * `WS_CLOSE.CREDENTIAL_REVOKED`): revoked, rotated, its node revoked, its participant suspended,
 * or found invalid (expired, changed in the database) by revalidation.
 */
export const CREDENTIAL_END_REASONS = [
  'node_revoked',
  'token_rotated',
  'token_revoked',
  'participant_suspended',
  'credential_invalid',
] as const;
export type CredentialEndReason = (typeof CREDENTIAL_END_REASONS)[number];

/** True when an error's `details.reason` says the credential ended while in use. */
export function isCredentialEndReason(reason: unknown): reason is CredentialEndReason {
  return (CREDENTIAL_END_REASONS as readonly unknown[]).includes(reason);
}
