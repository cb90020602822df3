/**
 * Live WebSocket connections and the credentials they authenticated with. Each authenticated
 * socket holds its credential in LiveCredentials (auth/live-credentials.ts), which ends the hold
 * on a revocation (this replica or another) or when revalidation finds it invalid.
 *
 * When a socket's credential ends, the socket is *dead* at that instant: the procedures'
 * middleware and the heartbeat fast path refuse every further call on it, so a client that
 * ignores the close frame cannot act for one more message. Its subscriptions end with
 * `auth.unauthenticated` (they observe the same hold), then the close frame (4401) goes out on
 * the next turn of the event loop — after those error frames — and the socket is terminated
 * `closeGraceMs` later whether or not the client answered the close.
 */
import { WS_CLOSE } from '@tether/contracts';
import type { WebSocket } from 'ws';
import type { CredentialHold } from '../auth/live-credentials.js';
import type { Principal } from '../auth/principal.js';

/** Close codes a client can act on: these mean "do not reconnect with this credential". */
export const CLOSE_CREDENTIAL_REVOKED = WS_CLOSE.CREDENTIAL_REVOKED;

/** How long a socket whose credential ended may take to answer the close frame. */
export const CLOSE_GRACE_MS = 1_000;

interface Entry {
  principal: Principal | null;
  connectionId: string;
  /** The socket's hold on its credential (null for an unauthenticated socket). */
  hold: CredentialHold | null;
}

export class ConnectionRegistry {
  readonly #sockets = new Map<WebSocket, Entry>();
  readonly #closeGraceMs: number;

  constructor(options: { closeGraceMs?: number } = {}) {
    this.#closeGraceMs = options.closeGraceMs ?? CLOSE_GRACE_MS;
  }

  add(socket: WebSocket, entry: Entry): void {
    // Authentication is asynchronous: the socket may already be gone (its close event fired).
    if (socket.readyState === socket.CLOSED) {
      entry.hold?.release();
      return;
    }
    this.#sockets.set(socket, entry);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      entry.hold?.release();
    });
    const hold = entry.hold;
    if (hold) {
      const end = (): void => this.#end(socket, hold);
      if (hold.ended) end();
      else hold.signal.addEventListener('abort', end, { once: true });
    }
  }

  #end(socket: WebSocket, hold: CredentialHold): void {
    this.#sockets.delete(socket);
    const reason = (hold.signal.reason as { details?: { reason?: string } } | undefined)?.details
      ?.reason;
    // Next turn: the subscriptions on this socket end with their error frames first (they
    // observe the same hold, and answering is all microtasks); a close frame before them would
    // make the socket drop them.
    setImmediate(() => {
      if (socket.readyState === socket.OPEN) {
        socket.close(CLOSE_CREDENTIAL_REVOKED, (reason ?? 'credential ended').replaceAll('_', ' '));
      }
      if (socket.readyState !== socket.CLOSED) {
        setTimeout(() => socket.terminate(), this.#closeGraceMs).unref();
      }
    });
  }

  /**
   * The principal of a live socket whose credential has not ended: undefined once it ended or
   * the socket closed (the socket is dead: nothing more may run for it).
   */
  principalOf(socket: WebSocket): Principal | null | undefined {
    const entry = this.#sockets.get(socket);
    if (!entry || entry.hold?.ended) return undefined;
    return entry.principal;
  }

  get size(): number {
    return this.#sockets.size;
  }

  /** Live sockets by the kind of their principal (O(sockets); for metrics scrapes). */
  countByKind(): { node: number; participant: number } {
    let node = 0;
    let participant = 0;
    for (const entry of this.#sockets.values()) {
      if (entry.principal?.kind === 'node') node++;
      else if (entry.principal?.kind === 'participant') participant++;
    }
    return { node, participant };
  }

  sockets(): IterableIterator<WebSocket> {
    return this.#sockets.keys();
  }
}
