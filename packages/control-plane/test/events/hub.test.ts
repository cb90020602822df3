/**
 * The replica's feed hub on real PostgreSQL, driven by hand (no LISTEN connection): a slow
 * subscriber is ended with a retryable error instead of buffering without limit, and resumes
 * exactly; closing the hub ends subscriptions; a credential that ended ends them with its error;
 * a notification wakes a read; a hub that nobody needs reads nothing and starts again from the
 * feed's end for the next consumer.
 */
import { TetherError } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import type { ParticipantPrincipal } from '../../src/auth/principal.js';
import type { FeedEvent } from '../../src/events/feed.js';
import { FeedHub, idAtMost, type FeedTap } from '../../src/events/hub.js';
import { eventually } from '../eventually.js';
import { useTestDatabase } from '../db.js';
import { makeParticipant } from '../fixtures.js';

const t = useTestDatabase();

async function insertEvents(count: number, mark = 'n'): Promise<void> {
  await t.db.query(
    `INSERT INTO fleet_events (type, payload) SELECT 'node.updated', jsonb_build_object($2::text, g)
       FROM generate_series(1, $1) g`,
    [count, mark],
  );
}

async function nextEvent(sub: AsyncGenerator<FeedEvent>): Promise<FeedEvent> {
  const next = await sub.next();
  if (next.done) throw new Error('the subscription ended');
  return next.value;
}

describe('FeedHub', () => {
  it('ends a subscriber that falls too far behind with system.unavailable; it resumes exactly', async () => {
    const admin: ParticipantPrincipal = await makeParticipant(t.db, 'admin');
    const hub = new FeedHub(t.db, { maxBuffered: 5 });
    await hub.start();
    const slow = hub.subscribe(admin, {});
    // The first pull registers it and reads its (empty) backlog, then waits for live events.
    const firstPull = nextEvent(slow);
    await insertEvents(3);
    await hub.settle();
    const lastDelivered = (await firstPull).id;

    // Not pulling any more: 20 live events overflow its buffer of 5.
    await insertEvents(20);
    await hub.settle();
    await expect(
      (async () => {
        for (;;) {
          const next = await slow.next();
          if (next.done) return 'ended';
        }
      })(),
    ).rejects.toSatisfy(
      (e: unknown) => e instanceof TetherError && e.code === 'system.unavailable' && e.retryable,
    );
    expect(hub.subscriberCount).toBe(0);

    // Resuming from what it had: everything after, once, in order.
    const resumed = hub.subscribe(admin, { lastEventId: lastDelivered });
    const ids: bigint[] = [];
    for (let i = 0; i < 22; i++) ids.push(BigInt((await nextEvent(resumed)).id));
    const { rows } = await t.db.query<{ id: string }>(
      `SELECT e.id::text AS id FROM fleet_events e WHERE e.id > $1 ORDER BY e.id`,
      [lastDelivered],
    );
    expect(ids).toEqual(rows.map((r) => BigInt(r.id)));
    await resumed.return(undefined);
    await hub.close();
  });

  it('a subscription whose signal aborts with a TetherError (its credential ended) ends with it, from the backlog read or live; a plain abort ends it quietly', async () => {
    const admin = await makeParticipant(t.db, 'admin');
    const hub = new FeedHub(t.db);
    await hub.start();
    await insertEvents(3);
    const ended = new TetherError('auth.unauthenticated', 'The credential was revoked.');

    // During its backlog read (the first pull starts it).
    const early = new AbortController();
    const reading = hub.subscribe(admin, { lastEventId: '0' }, early.signal);
    const first = reading.next();
    early.abort(ended);
    await expect(first).rejects.toBe(ended);

    // Live, waiting for events (the hub has passed the three above: no backlog).
    await hub.settle();
    const live = new AbortController();
    const waiting = hub.subscribe(admin, {}, live.signal);
    const pending = waiting.next();
    await hub.settle();
    live.abort(ended);
    await expect(pending).rejects.toBe(ended);

    // The client leaving: a normal end.
    const quiet = new AbortController();
    const leaving = hub.subscribe(admin, {}, quiet.signal);
    const last = leaving.next();
    await hub.settle();
    quiet.abort();
    expect((await last).done).toBe(true);
    expect(hub.subscriberCount).toBe(0);
    await hub.close();
  });

  it('closing the hub ends open subscriptions normally and refuses new ones', async () => {
    const admin = await makeParticipant(t.db, 'admin');
    const hub = new FeedHub(t.db);
    await hub.start();
    const sub = hub.subscribe(admin, {});
    const pending = sub.next();
    await hub.settle();
    await hub.close();
    expect((await pending).done).toBe(true);
    await expect(hub.subscribe(admin, {}).next()).rejects.toSatisfy(
      (e: unknown) => e instanceof TetherError && e.code === 'system.unavailable',
    );
  });

  it('every notification wakes one read of what is new, and the hub keeps delivering after one that found nothing', async () => {
    const admin = await makeParticipant(t.db, 'admin');
    const hub = new FeedHub(t.db);
    await hub.start();
    const sub = hub.subscribe(admin, {});
    const first = nextEvent(sub);
    await insertEvents(1);
    hub.notify();
    const one = await first;
    expect(one.data).toEqual({ n: 1 });

    // A notification with nothing new behind it (a stray or late one) reads nothing…
    hub.notify();
    await hub.settle();
    expect(hub.cursor).toBe(one.id);
    // …and the next one still reaches the subscriber.
    const second = nextEvent(sub);
    await insertEvents(1);
    hub.notify();
    const two = await second;
    expect(BigInt(two.id)).toBeGreaterThan(BigInt(one.id));
    expect(two.data).toEqual({ n: 1 });
    expect(hub.cursor).toBe(two.id);
    await sub.return(undefined);
    await hub.close();
  });

  it('a hub that nobody needs reads nothing; the next subscriber starts after the pause, a resuming one reads it as backlog', async () => {
    const admin = await makeParticipant(t.db, 'admin');
    let reads = 0;
    const hub = new FeedHub(t.db, { onDispatch: () => reads++ });
    await hub.start();
    const startedAt = hub.cursor;
    await insertEvents(2, 'paused');
    hub.notify();
    await hub.settle();
    expect(hub.paused).toBe(true);
    expect([reads, hub.cursor]).toEqual([0, startedAt]);

    // From now on: the two events of the pause are not its business.
    const fresh = hub.subscribe(admin, {});
    const first = nextEvent(fresh);
    await eventually(
      () => Promise.resolve(hub.paused),
      (paused) => !paused,
    );
    await insertEvents(1, 'live');
    hub.notify();
    expect((await first).data).toEqual({ live: 1 });

    // From the start of the feed: the pause's events come in the backlog, in order.
    const resuming = hub.subscribe(admin, { lastEventId: startedAt });
    const replayed = [];
    for (let i = 0; i < 3; i++) replayed.push((await nextEvent(resuming)).data);
    expect(replayed).toEqual([{ paused: 1 }, { paused: 2 }, { live: 1 }]);
    await fresh.return(undefined);
    await resuming.return(undefined);
    await hub.close();
  });

  it('a tap is read for only while it is active, and told to look again when the hub resumes', async () => {
    const hub = new FeedHub(t.db);
    await hub.start();
    let active = false;
    const seen: unknown[] = [];
    let resumed = 0;
    const tap: FeedTap = {
      active: () => active,
      events: (events) => seen.push(...events.map((e) => e.data)),
      resumed: () => resumed++,
    };
    hub.tap(tap);
    await insertEvents(1, 'idle');
    hub.notify();
    await hub.settle();
    expect([hub.paused, seen, resumed]).toEqual([true, [], 0]);

    active = true;
    await insertEvents(1, 'woken');
    hub.notify();
    await hub.settle();
    // What was committed before the hub resumed is skipped: the tap was told to look itself.
    expect([hub.paused, seen, resumed]).toEqual([false, [], 1]);
    await insertEvents(1, 'after');
    hub.notify();
    await hub.settle();
    expect([seen, resumed]).toEqual([[{ after: 1 }], 1]);
    await hub.close();
  });

  it('awaken, called before a client is told its subscription started, resumes a paused hub: what is committed after it reaches the subscription', async () => {
    const admin = await makeParticipant(t.db, 'admin');
    const hub = new FeedHub(t.db);
    await hub.start();
    await insertEvents(1, 'before');
    hub.notify();
    await hub.settle();
    expect(hub.paused).toBe(true);

    await hub.awaken();
    expect(hub.paused).toBe(false);
    const sub = hub.subscribe(admin, {});
    const first = nextEvent(sub);
    await insertEvents(1, 'after');
    hub.notify();
    expect((await first).data).toEqual({ after: 1 });
    await sub.return(undefined);
    await hub.close();
  });
});

describe('event id order', () => {
  it('idAtMost orders ids as numbers, whatever their lengths and leading zeros', () => {
    const ids = [
      '0',
      '1',
      '9',
      '10',
      '99',
      '100',
      '0100',
      '007',
      '9007199254740993',
      '10000000000000000000',
    ];
    for (const a of ids) {
      for (const b of ids) {
        expect(idAtMost(a, b), `${a} ≤ ${b}`).toBe(BigInt(a) <= BigInt(b));
      }
    }
  });
});
