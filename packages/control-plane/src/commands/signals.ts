/**
 * Wake-ups for the command streams of this replica: a node's `runtimenode.commands` stream and
 * a participant's `command.watch` re-read the database when something about them changed.
 *
 * Every command transition is a fleet event, committed with the change, and every replica's feed
 * hub reads every event once (woken by the `tether_events` notification, whichever replica wrote
 * it; by its safety poll if a notification was lost). `CommandSignals` is the hub's tap: a
 * `command.*` event wakes the streams of its node and of its command. With no stream open the
 * tap is inactive, and a hub that nobody else needs reads nothing; when it reads again, every
 * stream looks again (`resumed`), since the hub skipped what came meanwhile. The database stays
 * the only source of what to send: a wake-up carries nothing but "look again", so a lost or
 * duplicated one costs a read, never a command.
 */
import { TetherError, type FleetEvent } from '@tether/contracts';
import type { FeedTap } from '../events/hub.js';

/** A level-triggered flag: set by `wake`, cleared by `next`; a wake before `next` is not lost. */
export class Wakeup {
  #pending = true;
  #resolve: (() => void) | null = null;

  wake(): void {
    this.#pending = true;
    const resolve = this.#resolve;
    this.#resolve = null;
    resolve?.();
  }

  /** Resolves at the next wake (at once if one came since the last call), or when `signal` aborts. */
  async next(signal: AbortSignal): Promise<void> {
    if (!this.#pending && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          this.#resolve = null;
          resolve();
        };
        this.#resolve = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    this.#pending = false;
  }
}

class Registry {
  readonly #byKey = new Map<string, Set<Wakeup>>();

  add(key: string, wakeup: Wakeup): () => void {
    let set = this.#byKey.get(key);
    if (!set) this.#byKey.set(key, (set = new Set()));
    set.add(wakeup);
    return () => {
      set.delete(wakeup);
      if (set.size === 0 && this.#byKey.get(key) === set) this.#byKey.delete(key);
    };
  }

  wake(key: string): void {
    for (const wakeup of this.#byKey.get(key) ?? []) wakeup.wake();
  }

  wakeAll(): void {
    for (const set of this.#byKey.values()) for (const wakeup of set) wakeup.wake();
  }

  /** No stream registered (keys go with their last stream): O(1), unlike `size`. */
  get empty(): boolean {
    return this.#byKey.size === 0;
  }

  get size(): number {
    let total = 0;
    for (const set of this.#byKey.values()) total += set.size;
    return total;
  }
}

export class CommandSignals implements FeedTap {
  readonly #nodes = new Registry();
  readonly #commands = new Registry();
  #closed = false;

  /** Shutdown: every stream ends (clients resume on another replica or after the restart). */
  close(): void {
    this.#closed = true;
    this.#nodes.wakeAll();
    this.#commands.wakeAll();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * What a stream does once the server shuts down: over HTTP (SSE) it ends, so the response can
   * finish; over a WebSocket it stays open until the socket goes (`signal` aborts), because the
   * client resubscribes everything that was open on a socket that closed, while a stream the
   * server completed would stay completed.
   */
  async #shutdown(transport: 'http' | 'ws', signal: AbortSignal): Promise<void> {
    if (transport === 'http' || signal.aborted) return;
    await new Promise<void>((resolve) =>
      signal.addEventListener('abort', () => resolve(), { once: true }),
    );
  }

  /**
   * A stream's wait for its next look at the database: true to look again; false when the
   * stream ends quietly (its client went, or the server shut down). A credential that ended
   * aborts with its error, which is thrown.
   */
  async next(wakeup: Wakeup, transport: 'http' | 'ws', signal: AbortSignal): Promise<boolean> {
    await wakeup.next(signal);
    if (this.#closed) await this.#shutdown(transport, signal);
    if (signal.aborted) {
      if (signal.reason instanceof TetherError) throw signal.reason;
      return false;
    }
    return !this.#closed;
  }

  /** Registers a node's stream; returns the unregister function. */
  watchNode(nodeId: string, wakeup: Wakeup): () => void {
    return this.#nodes.add(nodeId, wakeup);
  }

  watchCommand(commandId: string, wakeup: Wakeup): () => void {
    return this.#commands.add(commandId, wakeup);
  }

  wakeNode(nodeId: string): void {
    this.#nodes.wake(nodeId);
  }

  wakeCommand(commandId: string): void {
    this.#commands.wake(commandId);
  }

  /** The feed hub needs to read for this replica's command streams while any is open. */
  active(): boolean {
    return !this.#nodes.empty || !this.#commands.empty;
  }

  /** The feed hub read nothing for a while: every open stream looks again. */
  resumed(): void {
    this.#nodes.wakeAll();
    this.#commands.wakeAll();
  }

  /** Each command event the feed hub reads wakes its node's streams and its watchers. */
  events(events: readonly FleetEvent[]): void {
    for (const event of events) {
      if (
        event.type !== 'command.invoked' &&
        event.type !== 'command.state_changed' &&
        event.type !== 'command.refused'
      ) {
        continue;
      }
      if (event.nodeId !== null) this.#nodes.wake(event.nodeId);
      if (event.type !== 'command.refused') this.#commands.wake(event.data.commandId);
    }
  }

  /** Open node streams and watches on this replica (metrics, tests). */
  get streams(): number {
    return this.#nodes.size + this.#commands.size;
  }
}
