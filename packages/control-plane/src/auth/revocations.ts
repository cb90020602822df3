/**
 * In-process fan-out of credential revocations, so the transport can close live sockets at once
 * without services importing it. (Other replicas learn through the periodic revalidation of open
 * connections against the database, bounded by the auth cache TTL.)
 */
export interface Revocation {
  /** Hex SHA-256 hashes of credentials that stopped being valid. */
  credentialHashes: string[];
  nodeId?: string;
  reason: 'node_revoked' | 'token_rotated' | 'token_revoked';
}

export type RevocationListener = (revocation: Revocation) => void;

export class RevocationBus {
  readonly #listeners = new Set<RevocationListener>();

  subscribe(listener: RevocationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish(revocation: Revocation): void {
    for (const listener of this.#listeners) listener(revocation);
  }
}
