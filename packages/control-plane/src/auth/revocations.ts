import type { CredentialEndReason } from '@tether/contracts';
/**
 * Fan-out of credential revocations, so the transport can close live sockets at once without
 * services importing it. `publish` delivers in this process and hands the revocation to the
 * forwarder (the server sends it to the other replicas over PostgreSQL NOTIFY); what arrives
 * from other replicas comes in through `deliver`. The periodic revalidation of open sockets
 * remains the backstop if a notification is lost.
 */
export interface Revocation {
  /** Hex SHA-256 hashes of credentials that stopped being valid. */
  credentialHashes: string[];
  /** node_revoked: every credential of this node ended, whatever its hash. */
  nodeId?: string;
  /** participant_suspended: every participant token of this participant ended. */
  participantId?: string;
  reason: RevocationReason;
}

/** A published revocation: every credential end reason but revalidation's `credential_invalid`. */
export type RevocationReason = Exclude<CredentialEndReason, 'credential_invalid'>;

export type RevocationListener = (revocation: Revocation) => void;

export class RevocationBus {
  readonly #listeners = new Set<RevocationListener>();
  #forwarder: RevocationListener | null = null;

  subscribe(listener: RevocationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Where revocations published here also go (other replicas). */
  setForwarder(forwarder: RevocationListener | null): void {
    this.#forwarder = forwarder;
  }

  /** A revocation made on this replica: local listeners, then the forwarder. */
  publish(revocation: Revocation): void {
    this.deliver(revocation);
    this.#forwarder?.(revocation);
  }

  /** A revocation to act on here only (e.g. one received from another replica). */
  deliver(revocation: Revocation): void {
    for (const listener of this.#listeners) listener(revocation);
  }
}
