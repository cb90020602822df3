/**
 * `fleet.events` over WebSocket and SSE: live presence without polling, exact resume with
 * lastEventId, expired cursors, visibility, and commit-ordered ids under concurrent writers.
 */
import type { FleetEventView } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { pruneEvents } from '../../src/events/feed.js';
import { sweepPresence } from '../../src/runtime-nodes/sweep.js';
import { feedWritten } from '../../src/events/append.js';
import { eventually } from '../eventually.js';
import { assertOrdered, subscribeSse, subscribeWs, type Collected } from '../feed.js';
import { mutate, query } from '../http.js';
import { rawNodeSocket } from '../raw-ws.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, sessionOf, type NodeActor } from './actors.js';

type Transport = 'ws' | 'sse';
const TRANSPORTS: Transport[] = ['ws', 'sse'];

function subscribe(
  transport: Transport,
  server: TestServer,
  token: string,
  input: Parameters<typeof subscribeWs>[2] = {},
): Collected {
  return transport === 'ws'
    ? subscribeWs(server.wsUrl, token, input)
    : subscribeSse(server.url, token, input);
}

const presenceOf = (events: FleetEventView[], nodeId: string): string[] =>
  events.flatMap((e) =>
    e.type === 'presence.changed' && e.nodeId === nodeId ? [`${e.data.to}:${e.data.cause}`] : [],
  );

/**
 * Makes `count` real feed rows quickly (node.updated for `nodeId`), as one statement: valid
 * contract events (an extra payload field `n` is stored, and dropped on the way out: events are
 * parsed with the contract's schema before they reach a client).
 */
async function bulkEvents(server: TestServer, nodeId: string, count: number): Promise<void> {
  await server.db.query(
    `INSERT INTO fleet_events (type, node_id, payload)
     SELECT 'node.updated', $1,
            jsonb_build_object('changed', jsonb_build_array('labels'),
                               'by', jsonb_build_object('kind', 'node', 'nodeId', $1::text), 'n', g)
       FROM generate_series(1, $2) g`,
    [nodeId, count],
  );
  feedWritten(server.db);
}

async function beat(server: TestServer, node: NodeActor, healthState = 'online'): Promise<void> {
  const r = await mutate(
    server.url,
    'runtimenode.heartbeat',
    { nodeId: node.nodeId, healthState },
    { token: node.token },
  );
  if (r.status !== 200) throw new Error(r.raw);
}

async function detach(server: TestServer, node: NodeActor): Promise<void> {
  const r = await mutate(
    server.url,
    'runtimenode.detach',
    { nodeId: node.nodeId },
    { token: node.token },
  );
  if (r.status !== 200) throw new Error(r.raw);
}

/**
 * Ages the node's presence by hand (its last sign of life moved back past the server's
 * threshold for `to`), then runs the server's sweep statement: demotion by age without waiting
 * for the clock, so the test does not depend on the machine's speed. (The server's own sweeper
 * holds demotions for the offline threshold after start; had it run, it would make the same
 * transitions: the sweep is transition-only.)
 */
async function ageAndSweep(
  server: TestServer,
  node: NodeActor,
  to: 'degraded' | 'offline',
): Promise<void> {
  const { degradedAfterMs, offlineAfterMs } = server.config;
  const ageMs = to === 'degraded' ? (degradedAfterMs + offlineAfterMs) / 2 : offlineAfterMs * 2;
  await server.db.query(
    `UPDATE runtime_node_presence
        SET last_heartbeat_at = CASE WHEN last_heartbeat_at IS NULL THEN NULL ELSE now() - $2 * interval '1 ms' END,
            online_since = CASE WHEN online_since IS NULL THEN NULL ELSE now() - $2 * interval '1 ms' END,
            changed_at = now() - $2 * interval '1 ms'
      WHERE node_id = $1`,
    [node.nodeId, ageMs],
  );
  const transitions = await sweepPresence(server.db, { degradedAfterMs, offlineAfterMs });
  expect(transitions.filter((t) => t.nodeId === node.nodeId).map((t) => t.to)).toEqual([to]);
}

async function dbEventIdsAfter(server: TestServer, afterId: string): Promise<string[]> {
  const { rows } = await server.db.query<{ id: string }>(
    `SELECT id::text AS id FROM fleet_events e WHERE e.id > $1 ORDER BY e.id`,
    [afterId],
  );
  return rows.map((r) => r.id);
}

describe('fleet.events', () => {
  it('a dashboard sees a node go online, degraded, offline and back, over WS and SSE at once', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const viaWs = subscribeWs(server.wsUrl, server.adminToken);
    const viaSse = subscribeSse(server.url, owner.token, { filter: { nodeId: node.nodeId } });
    const reached = (n: number) => async () => {
      const has = (events: FleetEventView[]) => presenceOf(events, node.nodeId).length >= n;
      await Promise.all([viaWs.until(has), viaSse.until(has)]);
    };
    try {
      // Live-only subscriptions start when the server registers them.
      await eventually(
        () => Promise.resolve(server.deps.feed.subscriberCount),
        (n) => n === 2,
      );
      await beat(server, node);
      await reached(1)();
      // No more beats: the sweep demotes it by age, degraded then offline.
      await ageAndSweep(server, node, 'degraded');
      await reached(2)();
      await ageAndSweep(server, node, 'offline');
      await reached(3)();
      // Connecting brings it back; silence on the socket lets the sweep demote it again.
      const socket = await rawNodeSocket(server.wsUrl, node.token);
      await reached(4)();
      await ageAndSweep(server, node, 'degraded');
      await reached(5)();
      await ageAndSweep(server, node, 'offline');
      await reached(6)();
      await socket.call('mutation', 'runtimenode.heartbeat', {
        nodeId: node.nodeId,
        healthState: 'online',
      });
      await reached(7)();
      await socket.close();
      await reached(8)();

      for (const sub of [viaWs, viaSse]) {
        expect(sub.error).toBeNull();
        assertOrdered(sub.events);
      }
      const wsSeq = presenceOf(viaWs.events, node.nodeId);
      expect(presenceOf(viaSse.events, node.nodeId)).toEqual(wsSeq);
      expect(wsSeq).toEqual([
        'online:heartbeat',
        'degraded:sweep',
        'offline:sweep',
        'online:connection',
        'degraded:sweep',
        'offline:sweep',
        'online:heartbeat',
        'offline:connection',
      ]);
      // The filtered SSE subscriber got this node's events only.
      expect(viaSse.events.every((e) => e.nodeId === node.nodeId)).toBe(true);
    } finally {
      await viaWs.close();
      await viaSse.close();
    }
  });

  for (const transport of TRANSPORTS) {
    it(`${transport}: resuming with lastEventId after missing 1 000 events delivers all 1 000 once, in order, then live ones`, async () => {
      await using server = await startTestServer();
      const owner = await participant(server);
      const node = await nodeOf(server, owner);

      const first = subscribe(transport, server, server.adminToken);
      // A live-only subscription sees what is written after the server registered it: a beat
      // sent before that (a slow connect) would never reach it.
      await eventually(
        () => Promise.resolve(server.deps.feed.subscriberCount),
        (n) => n === 1,
      );
      await beat(server, node);
      await first.until((events) => events.length >= 1);
      const lastSeen = first.events.at(-1)!.id;
      await first.close();

      await bulkEvents(server, node.nodeId, 1_000);
      const missed = await dbEventIdsAfter(server, lastSeen);
      expect(missed).toHaveLength(1_000);

      const resumed = subscribe(transport, server, server.adminToken, { lastEventId: lastSeen });
      try {
        await resumed.until((events) => events.length >= 1_000);
        expect(resumed.events.map((e) => e.id)).toEqual(missed);
        expect(resumed.events.every((e) => !('n' in e.data))).toBe(true);
        // Then live: the next change arrives right after, with nothing repeated.
        await detach(server, node);
        await resumed.until((events) => events.length >= 1_001);
        expect(resumed.events[1_000]).toMatchObject({
          type: 'presence.changed',
          nodeId: node.nodeId,
          data: { from: 'online', to: 'offline', cause: 'detach' },
        });
        assertOrdered(resumed.events);
        expect(new Set(resumed.events.map((e) => e.id)).size).toBe(resumed.events.length);
        expect(resumed.error).toBeNull();
      } finally {
        await resumed.close();
      }
    });

    it(`${transport}: a lastEventId older than retention (or never issued) gets events.cursor_expired`, async () => {
      await using server = await startTestServer();
      const owner = await participant(server);
      const node = await nodeOf(server, owner);
      await bulkEvents(server, node.nodeId, 50);
      const [oldest] = await dbEventIdsAfter(server, '0');
      // The server's own writes can end a pruning round early (a batch short of its size);
      // rounds continue until one deletes nothing, as the retention loop does over time.
      let deleted = 0;
      for (;;) {
        const round = await pruneEvents(
          server.db,
          { retainMs: 0, retainCount: 10, batchSize: 7 },
          'test.prune',
        );
        if (round === 0) break;
        deleted += round;
      }
      expect(deleted).toBeGreaterThanOrEqual(40);

      const expired = subscribe(transport, server, server.adminToken, { lastEventId: oldest! });
      const ahead = subscribe(transport, server, server.adminToken, {
        lastEventId: '9000000000',
      });
      try {
        expect(await expired.failed).toBe('events.cursor_expired');
        expect(await ahead.failed).toBe('events.cursor_expired');
        expect(expired.events).toEqual([]);
      } finally {
        await expired.close();
        await ahead.close();
      }
      // The same over plain HTTP, with its registered status.
      const listed = await query(
        server.url,
        'fleet.list',
        { afterId: oldest! },
        { token: server.adminToken },
      );
      expect(listed.status).toBe(412);
    });
  }

  it('visibility: owners and co-members see a node; a stranger sees nothing of it; admins see all', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const coMember = await participant(server);
    const stranger = await participant(server);
    const session = await sessionOf(server, owner);
    const added = await mutate(
      server.url,
      'membership.add',
      { sessionId: session, participantId: coMember.participantId, role: 'viewer' },
      { token: owner.token },
    );
    expect(added.status).toBe(200);
    const node = await nodeOf(server, owner);
    const strangersNode = await nodeOf(server, stranger);
    const attached = await mutate(
      server.url,
      'runtimenode.attach',
      {
        sessionId: session,
        participantId: owner.participantId,
        nodeId: node.nodeId,
        nodeVersion: '1.0',
        capabilities: { shell: {} },
        healthState: 'online',
      },
      { token: node.token },
    );
    expect(attached.status).toBe(200);

    const subs = {
      owner: subscribeWs(server.wsUrl, owner.token),
      coMember: subscribeSse(server.url, coMember.token),
      stranger: subscribeWs(server.wsUrl, stranger.token),
      admin: subscribeSse(server.url, server.adminToken),
    };
    try {
      // Resume from before the attach as well: the backlog obeys the same rule.
      const { rows } = await server.db.query<{ id: string }>(
        `SELECT (min(id) - 1)::text AS id FROM fleet_events WHERE node_id = $1`,
        [node.nodeId],
      );
      const strangerBacklog = subscribeWs(server.wsUrl, stranger.token, {
        lastEventId: rows[0]!.id,
      });
      await eventually(
        () => Promise.resolve(server.deps.feed.subscriberCount),
        (n) => n === 5,
      );
      await detach(server, node);
      // The stranger's barrier: an event of their own node, written after the others.
      await beat(server, strangersNode);
      const hasOwn = (events: FleetEventView[]) =>
        events.some((e) => e.nodeId === strangersNode.nodeId);
      const sawDetach = (events: FleetEventView[]) =>
        events.some((e) => e.nodeId === node.nodeId && e.type === 'runtimenode.detached');
      await Promise.all([
        subs.owner.until(sawDetach),
        subs.coMember.until(sawDetach),
        subs.admin.until((events) => sawDetach(events) && hasOwn(events)),
        subs.stranger.until(hasOwn),
        strangerBacklog.until(hasOwn),
      ]);
      for (const s of [subs.stranger, strangerBacklog]) {
        expect(s.events.filter((e) => e.nodeId === node.nodeId)).toEqual([]);
        expect(s.events.filter((e) => e.sessionId === session)).toEqual([]);
      }
      expect(subs.owner.events.some((e) => e.nodeId === strangersNode.nodeId)).toBe(false);
      expect(subs.coMember.events.some((e) => e.nodeId === strangersNode.nodeId)).toBe(false);
      await strangerBacklog.close();
    } finally {
      await Promise.all(Object.values(subs).map((s) => s.close()));
    }
  });

  it('a node token cannot subscribe (participants only), and no token is auth.unauthenticated', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const asNode = subscribeWs(server.wsUrl, node.token);
    const anonymous = subscribeSse(server.url, 'tpt_not-a-real-token-000000000000000000');
    try {
      expect(await asNode.failed).toBe('auth.forbidden');
      expect(await anonymous.failed).toBe('auth.unauthenticated');
    } finally {
      await asNode.close();
      await anonymous.close();
    }
  });

  it('concurrent writers: the live feed equals the table, in id order, with nothing missing or repeated', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const nodes = await Promise.all(Array.from({ length: 10 }, () => nodeOf(server, owner)));
    const { rows } = await server.db.query<{ id: string }>(
      `SELECT COALESCE(max(id), 0)::text AS id FROM fleet_events`,
    );
    const start = rows[0]!.id;
    const sub = subscribeWs(server.wsUrl, server.adminToken, { lastEventId: start });
    try {
      // Each node flips online/offline 10 times over HTTP while the others do the same, and a
      // bulk statement lands in the middle: 200 presence transitions + 300 bulk rows.
      await Promise.all([
        ...nodes.map(async (node) => {
          for (let i = 0; i < 10; i++) {
            await beat(server, node);
            await detach(server, node);
          }
        }),
        bulkEvents(server, nodes[0]!.nodeId, 300),
      ]);
      const expected = await dbEventIdsAfter(server, start);
      expect(expected.length).toBe(500);
      await sub.until((events) => events.length >= expected.length);
      expect(sub.events.map((e) => e.id)).toEqual(expected);
      for (const node of nodes) {
        expect(presenceOf(sub.events, node.nodeId)).toEqual(
          Array.from({ length: 10 }, () => ['online:heartbeat', 'offline:detach']).flat(),
        );
      }
    } finally {
      await sub.close();
    }
  });

  it('fleet.list pages the same feed over plain HTTP', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    await bulkEvents(server, node.nodeId, 25);
    const all = await dbEventIdsAfter(server, '0');
    const seen: string[] = [];
    let afterId: string | undefined;
    for (;;) {
      const page = await query<{ items: FleetEventView[]; lastEventId: string; hasMore: boolean }>(
        server.url,
        'fleet.list',
        { ...(afterId ? { afterId } : {}), limit: 10 },
        { token: owner.token },
      );
      expect(page.status).toBe(200);
      seen.push(...page.data.items.map((e) => e.id));
      afterId = page.data.lastEventId;
      if (!page.data.hasMore) break;
    }
    // The owner sees every event of their node (all of them here).
    expect(seen).toEqual(all);
  });

  it('a tether_events notification wakes the hub whatever its payload (garbage, an old "first-last"), and the feed keeps flowing', async () => {
    // The test server's safety poll is 10 minutes: only a notification delivers within the test.
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const sub = subscribeWs(server.wsUrl, server.adminToken);
    try {
      await eventually(
        () => Promise.resolve(server.deps.feed.subscriberCount),
        (n) => n === 1,
      );
      let expected = 0;
      for (const payload of ['garbage', '1-1']) {
        // Rows written without announcing them; then a stray notification on the channel.
        await server.db.query(
          `INSERT INTO fleet_events (type, node_id, payload)
           VALUES ('node.updated', $1, jsonb_build_object('changed', jsonb_build_array('labels'),
                   'by', jsonb_build_object('kind', 'node', 'nodeId', $1::text)))`,
          [node.nodeId],
        );
        await server.db.query(`SELECT pg_notify('tether_events', $1)`, [payload]);
        expected++;
        await sub.until((events) => events.length === expected);
      }
      // And the ordinary path still works after them.
      await beat(server, node);
      await sub.until((events) => presenceOf(events, node.nodeId).length === 1);
      expect(sub.events.map((e) => e.type)).toEqual([
        'node.updated',
        'node.updated',
        'presence.changed',
      ]);
      expect(sub.error).toBeNull();
    } finally {
      await sub.close();
    }
  });

  it('presence reaches a subscriber on a second replica (same database), without polling', async () => {
    await using a = await startTestServer();
    await using b = await startTestServer({
      databaseUrl: a.config.databaseUrl!,
      // No safety poll within the test's time: delivery must come from NOTIFY.
      env: { TETHER_FEED_POLL_MS: '600000' },
    });
    const owner = await participant(a);
    const node = await nodeOf(a, owner);
    const dashboard = subscribeWs(b.wsUrl, owner.token, { filter: { nodeId: node.nodeId } });
    try {
      await eventually(
        () => Promise.resolve(b.deps.feed.subscriberCount),
        (n) => n === 1,
      );
      const socket = await rawNodeSocket(a.wsUrl, node.token);
      await dashboard.until((events) => presenceOf(events, node.nodeId).length === 1);
      await socket.close();
      await dashboard.until((events) => presenceOf(events, node.nodeId).length === 2);
      expect(presenceOf(dashboard.events, node.nodeId)).toEqual([
        'online:connection',
        'offline:connection',
      ]);
    } finally {
      await dashboard.close();
    }
  });
});
