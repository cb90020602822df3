/**
 * The fleet gauges through a real server's /metrics: nodes by health and by attachment, WebSocket
 * sessions by kind, the feed's position and lag, sweep figures, the database flag, and the
 * default process metrics under one `tether_` prefix.
 */
import { describe, expect, inject, it } from 'vitest';
import { adminQuery } from '../postgres.js';
import { eventually } from '../eventually.js';
import { subscribeSse } from '../feed.js';
import { mutate } from '../http.js';
import { FAST_PRESENCE_ENV, startTestServer, type TestServer } from '../server.js';
import { beat, nodeOf, participant, sessionOf, wsClient } from '../wire/actors.js';
import { metricTypes, sampleValue } from './metrics-text.js';

/** Retries `check` (assertions) until it passes; fails with its last assertion error. */
async function settles(check: () => Promise<void>): Promise<void> {
  let failure: unknown = null;
  const passed = await eventually(
    async () => {
      try {
        await check();
        return true;
      } catch (error) {
        failure = error;
        return false;
      }
    },
    (ok) => ok,
  ).catch(() => false);
  if (!passed) throw failure;
}

async function scrape(server: TestServer): Promise<string> {
  const res = await fetch(`${server.url}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

describe('fleet gauges on /metrics', () => {
  it('default metrics carry the tether_ prefix once (tether_process_cpu_seconds_total)', async () => {
    await using server = await startTestServer();
    const types = metricTypes(await scrape(server));
    expect(types.get('tether_process_cpu_seconds_total')).toBe('counter');
    expect(types.has('tether_nodejs_eventloop_lag_seconds')).toBe(true);
    expect([...types.keys()].filter((n) => n.includes('process_process'))).toEqual([]);
  });

  it('nodes by health and attachment, revoked nodes, sessions by kind, database up', async () => {
    await using server = await startTestServer({
      env: { TETHER_METRICS_FLEET_REFRESH_MS: '1' },
    });
    const owner = await participant(server, 'admin');
    const online = await nodeOf(server, owner);
    const attached = await nodeOf(server, owner);
    await nodeOf(server, owner); // never beats: offline
    const revoked = await nodeOf(server, owner);
    const session = await sessionOf(server, owner);
    // The revoked one beats first: revocation must take it out of the live counts.
    for (const node of [online, attached, revoked]) await beat(server, node);
    const attach = await mutate(
      server.url,
      'runtimenode.attach',
      {
        sessionId: session,
        participantId: owner.participantId,
        nodeId: attached.nodeId,
        nodeVersion: '1.0',
        capabilities: {},
        healthState: 'online',
      },
      { token: attached.token },
    );
    expect(attach.status).toBe(200);
    const revoke = await mutate(
      server.url,
      'node.revoke',
      { nodeId: revoked.nodeId },
      { token: owner.token },
    );
    expect(revoke.status).toBe(200);

    const nodeSocket = wsClient(server, { token: online.token });
    const participantSocket = wsClient(server, { token: owner.token });
    const anonymous = wsClient(server, {});
    try {
      await Promise.all([nodeSocket.opened, participantSocket.opened, anonymous.opened]);
      // connectionParams are read with the first call: make one on each socket.
      await Promise.all([
        nodeSocket.client.system.info.query(),
        participantSocket.client.system.info.query(),
        anonymous.client.system.info.query(),
      ]);
      await settles(async () => {
        const text = await scrape(server);
        expect(sampleValue(text, 'tether_database_up')).toBe(1);
        expect(sampleValue(text, 'tether_fleet_nodes', { health: 'online' })).toBe(2);
        expect(sampleValue(text, 'tether_fleet_nodes', { health: 'degraded' })).toBe(0);
        expect(sampleValue(text, 'tether_fleet_nodes', { health: 'offline' })).toBe(1);
        expect(sampleValue(text, 'tether_fleet_nodes_revoked')).toBe(1);
        // Attached, not yet confirmed by the node (capabilities announced by a later beat).
        expect(sampleValue(text, 'tether_fleet_node_attachments', { state: 'registering' })).toBe(
          1,
        );
        expect(sampleValue(text, 'tether_fleet_node_attachments', { state: 'online' })).toBe(0);
        expect(sampleValue(text, 'tether_fleet_node_attachments', { state: 'none' })).toBe(2);
        expect(sampleValue(text, 'tether_ws_sessions', { kind: 'node' })).toBe(1);
        expect(sampleValue(text, 'tether_ws_sessions', { kind: 'participant' })).toBe(1);
        expect(sampleValue(text, 'tether_ws_sessions', { kind: 'unauthenticated' })).toBe(1);
      });
    } finally {
      await Promise.all([nodeSocket.close(), participantSocket.close(), anonymous.close()]);
    }
    await settles(async () => {
      const text = await scrape(server);
      expect(sampleValue(text, 'tether_ws_sessions', { kind: 'node' })).toBe(0);
      expect(sampleValue(text, 'tether_ws_sessions', { kind: 'participant' })).toBe(0);
    });
  });

  it('the feed: head id and this replica’s cursor meet, a notification is timed to delivery', async () => {
    await using server = await startTestServer({
      env: { TETHER_METRICS_FLEET_REFRESH_MS: '1' },
    });
    const owner = await participant(server, 'admin');
    // A dashboard watching: the hub reads for it (with nobody to serve it reads nothing).
    const dashboard = subscribeSse(server.url, owner.token);
    await eventually(
      () => Promise.resolve(server.deps.feed.subscriberCount),
      (n) => n === 1,
    );
    const before = await scrape(server);
    const servedBefore = sampleValue(before, 'tether_feed_delivery_seconds_count') ?? 0;
    const node = await nodeOf(server, owner);
    // Coming online writes a fleet event (presence.changed), announced after its commit.
    await beat(server, node);
    const { rows } = await server.db.query<{ id: string }>(
      `SELECT max(id)::text AS id FROM fleet_events`,
    );
    const newest = Number(rows[0]!.id);
    expect(newest).toBeGreaterThan(0);
    await settles(async () => {
      const text = await scrape(server);
      expect(sampleValue(text, 'tether_feed_head_event_id')).toBe(newest);
      expect(sampleValue(text, 'tether_feed_cursor_event_id')).toBe(newest);
      expect(sampleValue(text, 'tether_feed_lag_seconds')).toBe(0);
      expect(sampleValue(text, 'tether_feed_delivery_seconds_count')).toBeGreaterThan(servedBefore);
    });
    await dashboard.until((events) => events.some((e) => e.type === 'presence.changed'));
    await dashboard.close();
  });

  it('feed lag: an event this replica has not handed out shows its age', async () => {
    await using server = await startTestServer({
      env: { TETHER_METRICS_FLEET_REFRESH_MS: '1' },
    });
    const owner = await participant(server, 'admin');
    const dashboard = subscribeSse(server.url, owner.token);
    await eventually(
      () => Promise.resolve(server.deps.feed.subscriberCount),
      (n) => n === 1,
    );
    // Written behind the server's back, without the notification: the hub does not read it
    // (the safety poll is 10 minutes in tests), so it stays undelivered and ages.
    await server.db.query(
      `INSERT INTO fleet_events (type, payload, at) VALUES ('session.updated', '{}', now() - interval '90 seconds')`,
    );
    await settles(async () => {
      const text = await scrape(server);
      expect(sampleValue(text, 'tether_feed_lag_seconds')).toBeGreaterThanOrEqual(90);
    });
    server.deps.feed.poke();
    await settles(async () => {
      expect(sampleValue(await scrape(server), 'tether_feed_lag_seconds')).toBe(0);
    });
    await dashboard.close();
  });

  it('feed lag: a replica with nobody to hand events to owes none (lag 0), and its hub reads nothing', async () => {
    await using server = await startTestServer({
      env: { TETHER_METRICS_FLEET_REFRESH_MS: '1' },
    });
    const owner = await participant(server, 'admin');
    const node = await nodeOf(server, owner);
    await beat(server, node);
    await eventually(
      () => Promise.resolve(server.deps.feed.paused),
      (paused) => paused,
    );
    const cursor = server.deps.feed.cursor;
    await server.db.query(
      `INSERT INTO fleet_events (type, payload, at) VALUES ('session.updated', '{}', now() - interval '90 seconds')`,
    );
    server.deps.feed.poke();
    await settles(async () => {
      const text = await scrape(server);
      expect(sampleValue(text, 'tether_feed_lag_seconds')).toBe(0);
      expect(sampleValue(text, 'tether_feed_cursor_event_id')).toBe(Number(cursor));
    });
  });

  it('sweeps: transitions counted by target state, last completed round stamped', async () => {
    await using server = await startTestServer({
      env: { ...FAST_PRESENCE_ENV, TETHER_METRICS_FLEET_REFRESH_MS: '1' },
    });
    const owner = await participant(server, 'admin');
    const node = await nodeOf(server, owner);
    const initial = await scrape(server);
    expect(sampleValue(initial, 'tether_sweep_transitions_total', { to: 'offline' })).toBe(0);
    await beat(server, node);
    await settles(async () => {
      const text = await scrape(server);
      expect(sampleValue(text, 'tether_sweep_transitions_total', { to: 'offline' })).toBe(1);
      expect(sampleValue(text, 'tether_fleet_nodes', { health: 'offline' })).toBe(1);
      expect(sampleValue(text, 'tether_sweep_duration_seconds_count')).toBeGreaterThan(0);
      const stamped = sampleValue(text, 'tether_sweep_last_completed_timestamp_seconds') ?? 0;
      expect(Math.abs(stamped - Date.now() / 1000)).toBeLessThan(60);
    });
  });

  it('database unreachable: tether_database_up 0 and no fleet numbers; back to 1 when it returns', async () => {
    await using server = await startTestServer({
      env: { TETHER_METRICS_FLEET_REFRESH_MS: '1' },
    });
    const name = new URL(server.config.databaseUrl!).pathname.slice(1);
    const admin = inject('pgAdminUrl');
    expect(sampleValue(await scrape(server), 'tether_database_up')).toBe(1);
    await adminQuery(admin, `ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    try {
      await adminQuery(
        admin,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`,
      );
      await settles(async () => {
        const text = await scrape(server);
        expect(sampleValue(text, 'tether_database_up')).toBe(0);
        expect(sampleValue(text, 'tether_fleet_nodes', { health: 'offline' })).toBeUndefined();
        expect(sampleValue(text, 'tether_feed_lag_seconds')).toBeNaN();
      });
    } finally {
      await adminQuery(admin, `ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    }
    await settles(async () => {
      const text = await scrape(server);
      expect(sampleValue(text, 'tether_database_up')).toBe(1);
      expect(sampleValue(text, 'tether_fleet_nodes', { health: 'offline' })).toBe(0);
    });
  });
});
