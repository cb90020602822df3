/**
 * Presence that follows the WebSocket: a node authenticated on a socket is bound to it at
 * connect; when the socket closes (or is terminated for missing pings) the node goes offline,
 * unless a newer connection has bound it since (the SQL is guarded by the connection id).
 *
 * Per connection the release waits for the bind, so a socket that closes while its bind is
 * still in flight cannot leave the node online. Binds that arrive together (a reconnect wave)
 * and releases that arrive together (a network blip, a replica's sockets dropping) are each
 * written as one statement per batch of up to 1 000, collected over one event-loop turn.
 */
import type { Logger } from 'pino';
import type { Db } from '../db/pool.js';
import { BatchQueue } from '../lib/single-flight.js';
import { bindConnections, releaseConnections } from '../runtime-nodes/presence.js';

const BATCH = 1_000;

interface Binding {
  nodeId: string;
  connectionId: string;
  bound: Promise<void>;
}

interface PendingBind {
  nodeId: string;
  connectionId: string;
  done: () => void;
}

export class PresenceBindings {
  readonly #db: Db;
  readonly #log: Logger;
  readonly #bindings = new Map<string, Binding>();
  readonly #binds: BatchQueue<PendingBind>;
  readonly #releases: BatchQueue<Binding>;
  #stopped = false;

  constructor(db: Db, log: Logger) {
    this.#db = db;
    this.#log = log;
    this.#binds = new BatchQueue(BATCH, async (batch) => {
      try {
        await bindConnections(db, batch);
      } catch (err) {
        // Presence then follows the node's beats (and the sweep) instead of the socket.
        log.warn({ err, connections: batch.length }, 'presence bind failed');
      }
      for (const b of batch) b.done();
    });
    this.#releases = new BatchQueue(BATCH, async (batch) => {
      await Promise.all(batch.map((b) => b.bound));
      try {
        await releaseConnections(db, batch);
      } catch (err) {
        // The sweep still demotes them by heartbeat age.
        log.warn({ err, connections: batch.length }, 'presence release failed');
      }
    });
  }

  get size(): number {
    return this.#bindings.size;
  }

  bind(nodeId: string, connectionId: string): void {
    if (this.#stopped) return;
    let done!: () => void;
    const bound = new Promise<void>((resolve) => (done = resolve));
    this.#binds.push({ nodeId, connectionId, done });
    this.#bindings.set(connectionId, { nodeId, connectionId, bound });
  }

  /** Resolves once every bind and release queued so far has been written (or has failed). */
  async idle(): Promise<void> {
    await this.#binds.idle();
    await this.#releases.idle();
  }

  /** The socket is gone. */
  release(connectionId: string): void {
    const binding = this.#bindings.get(connectionId);
    if (!binding || this.#stopped) return;
    this.#bindings.delete(connectionId);
    this.#releases.push(binding);
  }

  /**
   * Shutdown: every node still bound here goes offline in one go (its clients were told to
   * reconnect, to this replica once restarted or to another). Later closes are ignored.
   */
  async releaseAll(): Promise<void> {
    this.#stopped = true;
    await this.#releases.idle();
    const remaining = [...this.#bindings.values()];
    this.#bindings.clear();
    // Batches of 1 000 written side by side (each locks its rows in node order, so they cannot
    // deadlock): several times faster than one batch after the other, and a stopping server
    // must release a whole fleet within its shutdown budget (figures: docs/performance.md).
    await Promise.all(remaining.map((b) => b.bound));
    const started = Date.now();
    const batches: Binding[][] = [];
    for (let i = 0; i < remaining.length; i += BATCH) batches.push(remaining.slice(i, i + BATCH));
    await Promise.all(
      batches.map((batch) =>
        releaseConnections(this.#db, batch).catch((err: unknown) =>
          this.#log.warn({ err, connections: batch.length }, 'presence release at shutdown failed'),
        ),
      ),
    );
    this.#log.info(
      { nodes: remaining.length, ms: Date.now() - started },
      'presence released at shutdown',
    );
  }
}
