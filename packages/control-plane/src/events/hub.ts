/**
 * The replica's fan-out of the fleet event feed. One reader per replica: woken by the
 * `tether_events` notification (sent after writers commit, on any replica, coalesced), by a
 * listener reconnect, or by a slow safety poll, it reads the new rows once, works out who may see them
 * (one query for every non-admin subscriber) and hands them to the local subscriptions.
 *
 * A subscription registers with the hub *before* it reads its backlog from the database (from
 * its lastEventId, or from the hub's position at registration), then yields the backlog and the
 * live events it buffered meanwhile, skipping ids it already yielded: nothing falls between the
 * two, nothing is delivered twice, order is id order.
 * A subscriber that cannot keep up is ended with a retryable error instead of buffering
 * without limit; it resumes exactly with its last id.
 * Visibility is decided per batch, with the memberships of the moment (one query for every
 * non-admin subscriber), so a member removed from a session stops receiving its events from the
 * next batch on. A subscription whose signal aborts with a TetherError (its credential ended:
 * auth/live-credentials.ts) ends with that error at once, even in the middle of a backlog read;
 * any other abort (the client left) ends it quietly.
 *
 * A hub that nobody needs reads nothing: with no subscription and no active tap (no command
 * stream on this replica, typically a fleet of daemons and no dashboard open), a notification
 * costs no query. The first consumer after such a pause wakes it: the hub starts again from the
 * feed's settled end (as `start` does) — `fleet.events` calls `awaken` before its client is told
 * the subscription started; a subscription that finds the hub still paused waits for that before
 * it reads its backlog — and the taps are told to look again (`FeedTap.resumed`), since the
 * events the hub skipped are never handed to them.
 */
import { TetherError, type FleetEventsFilter } from '@tether/contracts';
import type { ParticipantPrincipal } from '../auth/principal.js';
import { isAdmin } from '../auth/principal.js';
import type { Db } from '../db/pool.js';
import { SingleFlight } from '../lib/single-flight.js';
import {
  matchesFilter,
  readAllAfter,
  readEventsAfter,
  settledEventId,
  visibleToViewers,
  type FeedEvent,
} from './feed.js';

export interface FeedHubOptions {
  /** Rows read per round trip (fan-out and backlog). */
  batchSize?: number;
  /** Live events buffered per subscriber before it is ended as too slow. */
  maxBuffered?: number;
  onError?: (error: unknown) => void;
  /** Called with each batch's size and the subscribers it reached (metrics). */
  onDispatch?: (events: number, deliveries: number) => void;
  /** Milliseconds from a notification to the end of the read it caused (metrics). */
  onNotifyServed?: (ms: number) => void;
}

interface Subscriber {
  viewer: ParticipantPrincipal;
  filter: FleetEventsFilter | undefined;
  buffer: FeedEvent[];
  failed: TetherError | null;
  ended: boolean;
  wake: (() => void) | null;
  /** Resolves when the subscription is told to stop (failed or ended): backlog reads race it. */
  stopped: Promise<typeof STOPPED>;
  stop: () => void;
}

/** One of the server's own consumers of every event (`FeedHub.tap`). */
export interface FeedTap {
  /** Whether it needs events now (a hub that nobody needs reads nothing). */
  active(): boolean;
  /** Every event the hub reads, in id order, without visibility. */
  events(events: readonly FeedEvent[]): void;
  /** The hub reads again after a pause in which nobody needed it: what it skipped is gone. */
  resumed(): void;
}

const STOPPED = Symbol('stopped');

const DEFAULT_BATCH = 500;
/** How long `awaken` keeps the hub reading for a subscription about to register. */
const AWAKE_HOLD_MS = 5_000;
const DEFAULT_MAX_BUFFERED = 10_000;

/**
 * `a` ≤ `b` for event ids (a bigint as decimal text). Compared as text when that is the same:
 * equal lengths, or no leading zeros (as PostgreSQL writes them); this runs once per delivery.
 */
export function idAtMost(a: string, b: string): boolean {
  if (a.length === b.length) return a <= b;
  if (a[0] !== '0' && b[0] !== '0') return a.length < b.length;
  return BigInt(a) <= BigInt(b);
}

function maxId(a: string, b: string): string {
  return idAtMost(b, a) ? a : b;
}

export class FeedHub {
  readonly #db: Db;
  readonly #batch: number;
  readonly #maxBuffered: number;
  readonly #options: FeedHubOptions;
  readonly #subscribers = new Set<Subscriber>();
  readonly #taps = new Set<FeedTap>();
  /** Every event up to here has been handed to the subscribers registered at the time. */
  #cursor = '0';
  readonly #reader: SingleFlight;
  #closed = false;
  /** Nobody needed the events at the last read: the cursor stopped there (see the top). */
  #paused = false;
  /** Until then (performance.now()) the hub counts as needed: a subscription is about to start. */
  #holdUntil = 0;
  /** When the oldest notification not yet served by a read arrived (performance.now()). */
  #notifiedAt: number | null = null;

  constructor(db: Db, options: FeedHubOptions = {}) {
    this.#db = db;
    this.#batch = options.batchSize ?? DEFAULT_BATCH;
    this.#maxBuffered = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
    this.#options = options;
    // A run queued behind the last one before close() reads nothing.
    this.#reader = new SingleFlight(
      () => (this.#closed ? Promise.resolve() : this.#drain()),
      options.onError,
    );
  }

  /** Starts at the current end of the feed (earlier events are read as backlog, per subscriber). */
  async start(): Promise<void> {
    this.#cursor = await settledEventId(this.#db);
  }

  /**
   * Sees every event this replica's hub reads while anyone needs it (for the server's own
   * consumers, e.g. waking command streams). Returns the function that removes the tap.
   */
  tap(tap: FeedTap): () => void {
    this.#taps.add(tap);
    return () => this.#taps.delete(tap);
  }

  /** Whether the hub reads nothing until a consumer needs it (no subscription, no active tap). */
  get paused(): boolean {
    return this.#paused;
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /** Every event up to this id has been handed to the subscribers registered at the time. */
  get cursor(): string {
    return this.#cursor;
  }

  /** A `tether_events` notification: new events were committed (its payload carries nothing). */
  notify(): void {
    this.#notifiedAt ??= performance.now();
    this.poke();
  }

  /** Reads whatever is new (after a reconnect, a lost notification, or on the safety poll). */
  poke(): void {
    if (this.#closed) return;
    this.#reader.request();
  }

  /** Reads what is new now; resolves once it has been handed to the subscribers. */
  async settle(): Promise<void> {
    this.poke();
    await this.#reader.idle();
  }

  async #drain(): Promise<void> {
    // A read that starts after a notification serves it (whatever arrives later queues the next).
    const notifiedAt = this.#notifiedAt;
    this.#notifiedAt = null;
    if (!this.#needed()) {
      this.#paused = true;
      return;
    }
    if (this.#paused) await this.#resume();
    await this.#readNew();
    if (notifiedAt !== null) this.#options.onNotifyServed?.(performance.now() - notifiedAt);
  }

  /**
   * Called before a client is told that its subscription started: a paused hub resumes now,
   * and keeps reading until the subscription registers (`AWAKE_HOLD_MS` at most). Every event
   * committed after this resolves then reaches the subscription. (Without it the subscription
   * resumes the hub itself, and the events committed between its start and that resume are
   * skipped.)
   */
  async awaken(): Promise<void> {
    this.#holdUntil = performance.now() + AWAKE_HOLD_MS;
    if (this.#paused) await this.settle();
  }

  #needed(): boolean {
    if (this.#subscribers.size > 0 || performance.now() < this.#holdUntil) return true;
    for (const tap of this.#taps) if (tap.active()) return true;
    return false;
  }

  /** The end of a pause: on from the settled end; the taps look again for what was skipped. */
  async #resume(): Promise<void> {
    this.#cursor = maxId(this.#cursor, await settledEventId(this.#db));
    this.#paused = false;
    for (const tap of this.#taps) {
      try {
        tap.resumed();
      } catch (error) {
        this.#options.onError?.(error);
      }
    }
  }

  async #readNew(): Promise<void> {
    for (;;) {
      const page = await readAllAfter(this.#db, this.#cursor, this.#batch);
      const { events, through } = page;
      if (events.length === 0) {
        this.#cursor = maxId(this.#cursor, through);
        return;
      }
      const from = this.#cursor;
      // Whoever registers from here on reads these events as its backlog (they are committed),
      // so the batch goes to this snapshot of subscribers only.
      const targets = [...this.#subscribers];
      const viewers = new Set<string>();
      for (const s of targets) {
        if (!isAdmin(s.viewer)) viewers.add(s.viewer.participantId);
      }
      const visible = await visibleToViewers(this.#db, from, through, [...viewers]);
      this.#cursor = through;
      let deliveries = 0;
      for (const s of targets) {
        const allowed = isAdmin(s.viewer) ? null : visible.get(s.viewer.participantId);
        for (const event of events) {
          if (allowed !== null && !allowed?.has(event.id)) continue;
          if (!matchesFilter(event, s.filter)) continue;
          this.#push(s, event);
          deliveries++;
        }
      }
      this.#options.onDispatch?.(events.length, deliveries);
      for (const tap of this.#taps) {
        try {
          tap.events(events);
        } catch (error) {
          this.#options.onError?.(error);
        }
      }
      if (!page.full) return;
    }
  }

  #push(s: Subscriber, event: FeedEvent): void {
    if (s.ended || s.failed) return;
    if (s.buffer.length >= this.#maxBuffered) {
      s.failed = new TetherError(
        'system.unavailable',
        'The subscriber fell too far behind the live feed; resume with its lastEventId.',
        { maxBuffered: this.#maxBuffered },
      );
      s.buffer.length = 0;
    } else {
      s.buffer.push(event);
    }
    this.#wakeSubscriber(s);
  }

  #wakeSubscriber(s: Subscriber): void {
    const wake = s.wake;
    s.wake = null;
    wake?.();
    if (s.ended || s.failed) s.stop();
  }

  /**
   * The events `viewer` may see, after `lastEventId` (backlog, then live) or, without it, from
   * now on. Ends when `signal` aborts or the hub closes.
   */
  async *subscribe(
    viewer: ParticipantPrincipal,
    input: { lastEventId?: string | null | undefined; filter?: FleetEventsFilter | undefined },
    signal?: AbortSignal,
  ): AsyncGenerator<FeedEvent> {
    if (this.#closed) {
      throw new TetherError('system.unavailable', 'The server is shutting down; reconnect.');
    }
    let stop: () => void = () => undefined;
    const stopped = new Promise<typeof STOPPED>((resolve) => (stop = () => resolve(STOPPED)));
    const s: Subscriber = {
      viewer,
      filter: input.filter,
      buffer: [],
      failed: null,
      ended: false,
      wake: null,
      stopped,
      stop,
    };
    // Registered before the backlog is read: every event after the hub's cursor reaches the
    // buffer, every event up to it is already committed and so in the backlog.
    this.#subscribers.add(s);
    const onAbort = (): void => {
      const reason: unknown = signal?.reason;
      if (reason instanceof TetherError) {
        s.failed = reason;
        s.buffer.length = 0;
      } else {
        s.ended = true;
      }
      this.#wakeSubscriber(s);
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    // Read through a call: the flags change under our feet (abort, close, a slow-consumer failure).
    const failure = (): TetherError | null => s.failed;
    const ended = (): boolean => s.ended;
    try {
      // A paused hub first moves on to the settled end, and the backlog is read past it.
      if (this.#paused) {
        await this.settle();
        if (this.#paused && !ended()) {
          throw new TetherError('system.unavailable', 'The fleet feed cannot be read; retry.');
        }
      }
      // Without a lastEventId: from the hub's position now. The backlog read then catches what
      // the hub is reading at this very moment (a batch in flight skips new subscribers).
      let last = input.lastEventId ?? this.#cursor;
      for (;;) {
        let failed = failure();
        if (failed) throw failed;
        if (ended()) return;
        const page = await Promise.race([
          readEventsAfter(this.#db, viewer, last, input.filter, this.#batch),
          s.stopped,
        ]);
        if (page === STOPPED) continue;
        for (const event of page.events) {
          failed = failure();
          if (failed) throw failed;
          if (ended()) return;
          last = event.id;
          yield event;
        }
        if (!page.full) break;
      }
      for (;;) {
        // A credential that ended wins over everything else, even a client leaving.
        const failed = failure();
        if (failed) throw failed;
        if (ended() || signal?.aborted) return;
        const event = s.buffer.shift();
        if (event === undefined) {
          await new Promise<void>((resolve) => (s.wake = resolve));
          continue;
        }
        if (idAtMost(event.id, last)) continue;
        last = event.id;
        yield event;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#subscribers.delete(s);
    }
  }

  /** Ends every subscription (they return normally; clients resume elsewhere). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#subscribers) {
      s.ended = true;
      this.#wakeSubscriber(s);
    }
    await this.#reader.idle();
  }
}
