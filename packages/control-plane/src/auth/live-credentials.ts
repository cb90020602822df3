/**
 * Every long-lived use of a credential on this replica holds it here: a WebSocket connection for
 * its whole life, an SSE or REST event stream for as long as it streams. A hold *ends* — its
 * `signal` aborts with the typed error `auth.unauthenticated` — when the credential stops being
 * valid:
 *  - at once for a revocation published on the bus (a token revoked with its descendants, a node
 *    token rotated, a node revoked, a participant suspended), whether made on this replica or
 *    relayed from another one over PostgreSQL NOTIFY;
 *  - within one revalidation period (the auth cache TTL) for everything else: expiry, a change
 *    made straight in the database, a notification lost while the LISTEN connection was down.
 * A request checked against the auth cache is subject to the same TTL, so a credential stops
 * working everywhere within it.
 *
 * Nothing here knows about transports: the holder decides what ending means (a stream throws
 * the signal's reason; a socket refuses further calls and is closed). An ended hold never
 * comes back, even if the credential becomes valid again (a suspended participant resumed):
 * the client reconnects and authenticates anew.
 */
import { TetherError, type CredentialEndReason } from '@tether/contracts';
import type { Principal } from './principal.js';
import type { Revocation, RevocationBus } from './revocations.js';
import type { AuthService } from './service.js';

/** Why a hold ended: a published revocation, or revalidation found the credential invalid. */
export type HoldEndReason = CredentialEndReason;

const MESSAGES: Record<HoldEndReason, string> = {
  token_revoked: 'The credential was revoked.',
  token_rotated: 'The node token was rotated; reconnect with the new one.',
  node_revoked: 'The node was revoked.',
  participant_suspended: 'The participant was suspended.',
  credential_invalid: 'The credential expired or is no longer valid.',
};

/** The error a stream or call ends with once its credential ended. */
export function credentialEnded(reason: HoldEndReason): TetherError {
  return new TetherError('auth.unauthenticated', MESSAGES[reason], { reason });
}

export interface CredentialHold {
  readonly principal: Principal;
  /** Aborts, with a `TetherError('auth.unauthenticated')` as its reason, when the credential ends. */
  readonly signal: AbortSignal;
  readonly ended: boolean;
  /** The holder is done with the credential (idempotent). */
  release(): void;
}

class Hold implements CredentialHold {
  readonly principal: Principal;
  readonly #controller = new AbortController();
  readonly #onRelease: (hold: Hold) => void;
  #released = false;
  /** Read for every frame a socket sends: a field, not the signal's getter. */
  #ended = false;

  constructor(principal: Principal, onRelease: (hold: Hold) => void) {
    this.principal = principal;
    this.#onRelease = onRelease;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get ended(): boolean {
    return this.#ended;
  }

  end(reason: HoldEndReason): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onRelease(this);
    this.#controller.abort(credentialEnded(reason));
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#onRelease(this);
  }
}

export class LiveCredentials {
  readonly #auth: Pick<AuthService, 'stillValid' | 'forget'>;
  /** Holds by credential hash (hex); principals built without one (in-process) are kept apart. */
  readonly #byHash = new Map<string, Set<Hold>>();
  readonly #unhashed = new Set<Hold>();
  readonly #unsubscribe: () => void;

  constructor(auth: Pick<AuthService, 'stillValid' | 'forget'>, revocations: RevocationBus) {
    this.#auth = auth;
    this.#unsubscribe = revocations.subscribe((r) => this.onRevocation(r));
  }

  /** How many holds are live (sockets and streams). */
  get size(): number {
    let n = this.#unhashed.size;
    for (const set of this.#byHash.values()) n += set.size;
    return n;
  }

  /** Registers a live use of `principal`'s credential; release it when done. */
  hold(principal: Principal): CredentialHold {
    const hold = new Hold(principal, (h) => this.#forget(h));
    const hash = principal.credentialHash;
    if (hash === undefined) {
      this.#unhashed.add(hold);
    } else {
      let set = this.#byHash.get(hash);
      if (!set) this.#byHash.set(hash, (set = new Set()));
      set.add(hold);
    }
    return hold;
  }

  #forget(hold: Hold): void {
    const hash = hold.principal.credentialHash;
    if (hash === undefined) {
      this.#unhashed.delete(hold);
      return;
    }
    const set = this.#byHash.get(hash);
    if (!set) return;
    set.delete(hold);
    if (set.size === 0) this.#byHash.delete(hash);
  }

  /** Ends the holds a revocation covers; returns how many ended. */
  onRevocation(revocation: Revocation): number {
    const victims: Hold[] = [];
    for (const hash of revocation.credentialHashes) {
      const set = this.#byHash.get(hash);
      if (set) victims.push(...set);
    }
    const byIdentity =
      (revocation.reason === 'node_revoked' && revocation.nodeId !== undefined) ||
      (revocation.reason === 'participant_suspended' && revocation.participantId !== undefined);
    if (byIdentity) {
      for (const hold of this.#all()) {
        const p = hold.principal;
        if (
          (revocation.reason === 'node_revoked' &&
            p.kind === 'node' &&
            p.nodeId === revocation.nodeId) ||
          (revocation.reason === 'participant_suspended' &&
            p.kind === 'participant' &&
            p.participantId === revocation.participantId)
        ) {
          victims.push(hold);
        }
      }
    }
    let ended = 0;
    for (const hold of victims) {
      if (hold.ended) continue;
      hold.end(revocation.reason);
      ended++;
    }
    return ended;
  }

  *#all(): IterableIterator<Hold> {
    yield* this.#unhashed;
    for (const set of this.#byHash.values()) yield* set;
  }

  /**
   * Checks every held credential against the database (one query) and ends the holds of those
   * no longer valid. Only credentials that were checked: one first held while the query ran is
   * not in the answer and must not be ended for being absent from it.
   */
  async revalidate(): Promise<number> {
    const hashes = [...this.#byHash.keys()];
    if (hashes.length === 0) return 0;
    const valid = await this.#auth.stillValid(hashes);
    const invalid = hashes.filter((h) => !valid.has(h));
    if (invalid.length === 0) return 0;
    this.#auth.forget(invalid);
    let ended = 0;
    for (const hash of invalid) {
      for (const hold of [...(this.#byHash.get(hash) ?? [])]) {
        hold.end('credential_invalid');
        ended++;
      }
    }
    return ended;
  }

  /** Stops listening to revocations (shutdown). */
  close(): void {
    this.#unsubscribe();
  }
}

/**
 * A context's view of its credential's liveness. `eager`: held from now on (a WebSocket, for
 * its whole connection); otherwise held on the first `signal()` (an HTTP request that turns out
 * to be a stream), so plain requests cost nothing. `onClose` registers the release with the
 * transport (socket or response close).
 */
export interface CredentialScope {
  /** True once the held credential ended: nothing more may be executed for this context. */
  readonly ended: boolean;
  /** Aborts with `auth.unauthenticated` when the credential ends. */
  signal(): AbortSignal;
}

export interface HeldCredentialScope extends CredentialScope {
  /** The hold itself (acquired now if it was not yet). */
  hold(): CredentialHold;
}

export interface ScopeLifetime {
  eager: boolean;
  onClose: (release: () => void) => void;
}

export function credentialScope(
  live: LiveCredentials,
  principal: Principal,
  options: ScopeLifetime,
): HeldCredentialScope {
  let hold: CredentialHold | null = null;
  const acquire = (): CredentialHold => {
    if (hold === null) {
      const acquired = live.hold(principal);
      hold = acquired;
      options.onClose(() => acquired.release());
    }
    return hold;
  };
  if (options.eager) acquire();
  return {
    get ended() {
      return hold?.ended ?? false;
    },
    signal: () => acquire().signal,
    hold: acquire,
  };
}
