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
} as const;

/** True when a close code tells the client to stop reconnecting. */
export function isTerminalCloseCode(code: number): boolean {
  return code === WS_CLOSE.CREDENTIAL_REVOKED;
}
