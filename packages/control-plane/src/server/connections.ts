/**
 * Live WebSocket connections and the credentials they authenticated with. Revocations on this
 * replica close matching sockets at once; a periodic revalidation (one query for all sockets)
 * closes those revoked elsewhere or expired, within the auth cache TTL.
 */
import { WS_CLOSE } from '@tether/contracts';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/principal.js';
import type { AuthService } from '../auth/service.js';
import type { Revocation } from '../auth/revocations.js';

/** Close codes a client can act on: these mean "do not reconnect with this credential". */
export const CLOSE_CREDENTIAL_REVOKED = WS_CLOSE.CREDENTIAL_REVOKED;

interface Entry {
  principal: Principal | null;
  connectionId: string;
}

export class ConnectionRegistry {
  readonly #sockets = new Map<WebSocket, Entry>();

  add(socket: WebSocket, entry: Entry): void {
    // Authentication is asynchronous: the socket may already be gone (its close event fired).
    if (socket.readyState === socket.CLOSED) return;
    this.#sockets.set(socket, entry);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  /** The principal a live, registered socket authenticated as (undefined once closed/revoked). */
  principalOf(socket: WebSocket): Principal | null | undefined {
    return this.#sockets.get(socket)?.principal;
  }

  get size(): number {
    return this.#sockets.size;
  }

  sockets(): IterableIterator<WebSocket> {
    return this.#sockets.keys();
  }

  #closeWhere(predicate: (entry: Entry) => boolean, reason: string): number {
    let closed = 0;
    for (const [socket, entry] of this.#sockets) {
      if (predicate(entry)) {
        socket.close(CLOSE_CREDENTIAL_REVOKED, reason);
        this.#sockets.delete(socket);
        closed++;
      }
    }
    return closed;
  }

  onRevocation(revocation: Revocation): number {
    const hashes = new Set(revocation.credentialHashes);
    return this.#closeWhere(
      (e) =>
        (e.principal?.credentialHash !== undefined && hashes.has(e.principal.credentialHash)) ||
        (revocation.reason === 'node_revoked' &&
          e.principal?.kind === 'node' &&
          e.principal.nodeId === revocation.nodeId),
      revocation.reason.replace('_', ' '),
    );
  }

  /** Closes every socket whose credential is no longer valid in the database. */
  async revalidate(auth: AuthService): Promise<number> {
    const hashes = new Set<string>();
    for (const entry of this.#sockets.values()) {
      if (entry.principal?.credentialHash) hashes.add(entry.principal.credentialHash);
    }
    if (hashes.size === 0) return 0;
    const valid = await auth.stillValid([...hashes]);
    // Only credentials that were checked: a socket that authenticated while the query ran is
    // not in `hashes`, and must not be closed for being absent from `valid`.
    const invalid = new Set([...hashes].filter((h) => !valid.has(h)));
    auth.forget([...invalid]);
    return this.#closeWhere(
      (e) => e.principal?.credentialHash !== undefined && invalid.has(e.principal.credentialHash),
      'credential no longer valid',
    );
  }
}
