/**
 * WebSocket keep-alive from one process-wide timer, with protocol-level ping frames.
 *
 * tRPC's keep-alive arms two timers per socket and re-arms them on every message, and its ping
 * is a text message the client library must answer. Here one timer walks the sockets, a slice
 * per tick, so that each socket is visited every `pingMs / 2` and the pings of a round are spread
 * over it rather than written in one burst. A socket that sent nothing (no frame, no pong) for
 * `pingMs / 2` gets a ping *frame*, which every WebSocket implementation answers by itself
 * (browsers, `ws`, the SDK); if nothing at all arrives within `pongWaitMs` of the ping, the socket
 * is terminated — its close then releases the node's presence as any close does.
 *
 * The presence rule is kept: a socket silent since time L is pinged by L + `pingMs` at the
 * latest (a visit at most `pingMs / 2` after it had been silent `pingMs / 2`) and terminated
 * by L + `pingMs` + `pongWaitMs` (plus two ticks, at most 200 ms). A busy socket (a node beating
 * every second) is never pinged. Clients that send tRPC's text `PING` still get `PONG` from tRPC.
 *
 * A deadline is judged against the previous tick, not this one: timers run before the event
 * loop reads its sockets, so after a stall of this process (a turn longer than `pongWaitMs`)
 * the answers that arrived meanwhile are still unread when the next tick runs. A ping is
 * overdue only if its deadline had passed by the previous tick: a read of every socket came
 * between the two, and an answer that arrived in time has been seen. The server's own lateness
 * never cuts a client that answered.
 */
import type { WebSocket } from 'ws';

export interface KeepAliveOptions {
  pingMs: number;
  pongWaitMs: number;
  /** Monotonic clock (ms). */
  now?: () => number;
  /** Called for each socket terminated for not answering (a metric). */
  onTerminate?: () => void;
}

interface Watched {
  socket: WebSocket;
  /** When the socket last sent anything (a frame or a pong). */
  lastSeen: number;
  /** When it was last pinged; a ping is outstanding while this is after `lastSeen`. */
  pingedAt: number;
  closed: boolean;
}

/** Visits per round are spread over this many ticks at least… */
const TICKS_PER_ROUND = 8;
/** …and a tick is at most this long (it also bounds how late a pong deadline is noticed). */
const MAX_TICK_MS = 100;

export class KeepAlive {
  readonly #pingMs: number;
  readonly #pongWaitMs: number;
  readonly #now: () => number;
  readonly #onTerminate: () => void;
  readonly #visitMs: number;
  readonly #tickMs: number;
  readonly #watched = new Set<Watched>();
  /** This round's visiting order, and where the walk is in it. */
  #order: Watched[] = [];
  #cursor = 0;
  #roundStartedAt = -Infinity;
  /** Pings in the order they were sent (so are their deadlines). */
  #awaiting: { entry: Watched; sentAt: number }[] = [];
  #awaitingHead = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When the previous tick ran: the sockets have been read since. */
  #previousTick = -Infinity;
  #pings = 0;
  #terminated = 0;

  constructor(options: KeepAliveOptions) {
    this.#pingMs = options.pingMs;
    this.#pongWaitMs = options.pongWaitMs;
    this.#now = options.now ?? (() => performance.now());
    this.#onTerminate = options.onTerminate ?? (() => {});
    this.#visitMs = Math.max(1, this.#pingMs / 2);
    this.#tickMs = Math.max(1, Math.min(MAX_TICK_MS, Math.floor(this.#visitMs / TICKS_PER_ROUND)));
  }

  /** Pings sent and sockets terminated since start. */
  get stats(): { pings: number; terminated: number; watched: number } {
    return { pings: this.#pings, terminated: this.#terminated, watched: this.#watched.size };
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(), this.#tickMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  watch(socket: WebSocket): void {
    const entry: Watched = { socket, lastSeen: this.#now(), pingedAt: -Infinity, closed: false };
    this.#watched.add(entry);
    const seen = (): void => {
      entry.lastSeen = this.#now();
    };
    socket.on('message', seen);
    socket.on('pong', seen);
    socket.once('close', () => {
      entry.closed = true;
      this.#watched.delete(entry);
    });
  }

  /**
   * One tick: overdue pongs first (due by the previous tick, see the module comment), then this
   * tick's share of the round's visits.
   */
  tick(): void {
    const now = this.#now();
    const readBy = this.#previousTick;
    this.#previousTick = now;
    const awaiting = this.#awaiting;
    while (this.#awaitingHead < awaiting.length) {
      const { entry, sentAt } = awaiting[this.#awaitingHead]!;
      // Still waiting for this ping's answer (not answered, not superseded, not closed).
      const open = !entry.closed && entry.pingedAt === sentAt && entry.lastSeen < sentAt;
      if (open && sentAt + this.#pongWaitMs > readBy) break;
      this.#awaitingHead++;
      if (open) {
        this.#terminated++;
        this.#onTerminate();
        entry.socket.terminate();
      }
    }
    if (this.#awaitingHead > 1_024 && this.#awaitingHead * 2 > awaiting.length) {
      this.#awaiting = awaiting.slice(this.#awaitingHead);
      this.#awaitingHead = 0;
    }

    // One round visits every socket once, spread over `visitMs`; the next starts after it.
    if (this.#cursor >= this.#order.length && now - this.#roundStartedAt >= this.#visitMs) {
      this.#order = [...this.#watched];
      this.#cursor = 0;
      this.#roundStartedAt = now;
    }
    let quota = Math.ceil((this.#order.length * this.#tickMs) / this.#visitMs);
    while (quota > 0 && this.#cursor < this.#order.length) {
      const entry = this.#order[this.#cursor++]!;
      quota--;
      if (entry.closed || entry.pingedAt > entry.lastSeen) continue;
      if (now - entry.lastSeen < this.#visitMs) continue;
      const socket = entry.socket;
      if (socket.readyState !== socket.OPEN) continue;
      entry.pingedAt = now;
      this.#pings++;
      socket.ping();
      this.#awaiting.push({ entry, sentAt: now });
    }
  }
}
