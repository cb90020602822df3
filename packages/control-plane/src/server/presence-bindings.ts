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
  /** Each node's open connections on this replica (connection ids). */
  readonly #byNode = new Map<string, Set<string>>();
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
    this.#open(nodeId, connectionId);
  }

  /** Counts the connection among the node's open ones here (a second copy's is refused). */
  #open(nodeId: string, connectionId: string): void {
    let open = this.#byNode.get(nodeId);
    if (!open) this.#byNode.set(nodeId, (open = new Set()));
    open.add(connectionId);
  }

  /**
   * Whether `nodeId` has an open connection on this replica other than `connectionId` (the
   * caller's own, or null for a call over HTTP): then a second copy of the node is running.
   */
  hasOtherConnection(nodeId: string, connectionId: string | null): boolean {
    const open = this.#byNode.get(nodeId);
    if (!open) return false;
    return open.size > (connectionId !== null && open.has(connectionId) ? 1 : 0);
  }

  /**
   * A connection the resume statement already bound (runtime-nodes/resume.ts): nothing to write
   * now, released like any other when it closes.
   */
  adopt(nodeId: string, connectionId: string): void {
    if (this.#stopped) return;
    this.#bindings.set(connectionId, { nodeId, connectionId, bound: Promise.resolve() });
    this.#open(nodeId, connectionId);
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
    this.#forget(binding);
    this.#releases.push(binding);
  }

  #forget(binding: Binding): void {
    const open = this.#byNode.get(binding.nodeId);
    open?.delete(binding.connectionId);
    if (open?.size === 0) this.#byNode.delete(binding.nodeId);
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
    this.#byNode.clear();
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
