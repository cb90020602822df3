/**
 * The client side of keep-alive for every socket of the process, from one periodic check on the
 * shared scheduler (instead of tRPC's per-socket timers, re-armed on every message received).
 *
 * The rule per socket: anything received — a message (the server's text `PING` included), a
 * protocol-level ping or pong frame — counts as liveness. After `intervalMs` of silence the
 * socket is sent a protocol-level ping (answered by the peer's WebSocket library itself, no tRPC
 * message on either side); if still nothing has arrived `pongTimeoutMs` after that ping, the
 * socket is dead and `onDead` runs (the connection ends it at once rather than through a closing
 * handshake the dead peer would never answer).
 *
 * Precision is two check intervals (a check every quarter of the smallest interval or pong
 * timeout watched, between 50 ms and 1 s): a dead socket is detected at most that much later
 * than the exact rule, a live one is never dropped earlier. A pong deadline is judged against the
 * previous check, not this one: a process stalled for longer than the pong timeout (thousands
 * of simulated nodes reconnecting at once) has not yet read the answers that arrived during the
 * stall when its next check runs, and must not drop the sockets that did answer. Between two
 * checks the event loop has read its sockets, so a deadline passed by the previous check is a
 * pong really missed.
 */
import type WebSocket from 'ws';
import { processScheduler, type Scheduler, type ScheduledTask } from './scheduler.js';

export interface KeepAliveOptions {
  /** Ping after this much silence, milliseconds. */
  intervalMs: number;
  /** Dead when nothing arrives this long after the ping, milliseconds. */
  pongTimeoutMs: number;
}

interface Watched {
  socket: WebSocket;
  options: KeepAliveOptions;
  onDead: () => void;
  /** Something arrived since the last check. */
  heard: boolean;
  lastHeardAt: number;
  /** When the outstanding ping was sent (0: none). */
  pingAt: number;
}

const OPEN = 1;

export class KeepAliveMonitor {
  readonly #scheduler: Scheduler;
  readonly #watched = new Set<Watched>();
  #checkMs = 1_000;
  #task: ScheduledTask | null = null;
  /** When the previous check ran: the sockets have been read since. */
  #previousCheck = -Infinity;

  constructor(scheduler: Scheduler = processScheduler()) {
    this.#scheduler = scheduler;
  }

  /** Sockets watched now. */
  get size(): number {
    return this.#watched.size;
  }

  /**
   * Watches `socket` from now until it closes or the returned function is called. `onDead` is
   * called at most once.
   */
  watch(socket: WebSocket, options: KeepAliveOptions, onDead: () => void): () => void {
    const entry: Watched = {
      socket,
      options,
      onDead,
      heard: false,
      lastHeardAt: this.#scheduler.now(),
      pingAt: 0,
    };
    const heard = (): void => {
      entry.heard = true;
    };
    socket.on('message', heard);
    socket.on('ping', heard);
    socket.on('pong', heard);
    const unwatch = (): void => {
      if (!this.#watched.delete(entry)) return;
      socket.off('message', heard);
      socket.off('ping', heard);
      socket.off('pong', heard);
      socket.off('close', unwatch);
      if (this.#watched.size === 0) {
        this.#task?.cancel();
        this.#task = null;
      }
    };
    socket.on('close', unwatch);
    this.#watched.add(entry);
    const finest = Math.min(options.intervalMs, options.pongTimeoutMs) / 4;
    this.#checkMs = Math.min(this.#checkMs, Math.max(50, finest));
    if (!this.#task) this.#task = this.#scheduler.schedule(this.#checkMs, this.#check);
    return unwatch;
  }

  readonly #check = (): void => {
    const now = this.#scheduler.now();
    const readBy = this.#previousCheck;
    this.#previousCheck = now;
    const dead: Watched[] = [];
    for (const entry of this.#watched) {
      if (entry.heard) {
        entry.heard = false;
        entry.lastHeardAt = now;
        entry.pingAt = 0;
      }
      // Connecting (the handshake has its own deadline) or closing: nothing to keep alive.
      if (entry.socket.readyState !== OPEN) continue;
      if (entry.pingAt === 0) {
        if (now - entry.lastHeardAt >= entry.options.intervalMs) {
          entry.pingAt = now;
          try {
            entry.socket.ping();
          } catch {
            // closing under us: its close event unwatches it
          }
        }
      } else if (readBy - entry.pingAt >= entry.options.pongTimeoutMs) {
        dead.push(entry);
      }
    }
    for (const entry of dead) {
      this.#watched.delete(entry);
      entry.onDead();
    }
    this.#task =
      this.#watched.size > 0 ? this.#scheduler.schedule(this.#checkMs, this.#check) : null;
  };
}

let shared: KeepAliveMonitor | undefined;

/** The keep-alive check every connection of this process uses. */
export function processKeepAlive(): KeepAliveMonitor {
  return (shared ??= new KeepAliveMonitor());
}
