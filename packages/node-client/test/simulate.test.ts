/**
 * The simulator (the load generator behind `tether-agent simulate` and `pnpm bench`): N nodes
 * in one process, each with its own identity and socket; identity reuse; churn; and the outage
 * summary a bench reads after a server restart.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { spawnServer } from '@tether/control-plane/testing';
import {
  processKeepAlive,
  processScheduler,
  startSimulation,
  type NodeCredentials,
  type SimEvent,
} from '../src/index.js';
import {
  FAST_BEATS,
  eventually,
  freePort,
  metricTotal,
  operator,
  persistentDatabase,
  seed,
  startTestServer,
} from './support.js';

const TEST_NODE_OPTIONS = { backoff: { baseMs: 20, capMs: 300, stableAfterMs: 500 } };

describe('simulate', () => {
  it('N nodes, each with its own identity and socket, are online as the API sees them; stop detaches them all', async () => {
    await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '10000' } });
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const enrolled: NodeCredentials[] = [];
    const simulation = await startSimulation({
      url: server.url,
      enrollmentKey,
      sessionId,
      count: 12,
      runId: 'alpha',
      onEnrolled: (c) => enrolled.push(c),
      nodeOptions: TEST_NODE_OPTIONS,
    });
    try {
      await simulation.waitUntil((s) => s.online === 12);
      expect(new Set(enrolled.map((c) => c.token)).size).toBe(12);
      expect(server.host.connections.size).toBe(12);
      const listed = await admin.node.list.query({
        healthState: 'online',
        label: 'tether.sim/run=alpha',
        limit: 100,
      });
      expect(listed.items).toHaveLength(12);
      const found = await admin.node.findOnlineWithCapability.query({
        capability: 'sim',
        sessionId,
      });
      expect(found.items.map((n) => n.nodeId).sort()).toEqual(
        Array.from({ length: 12 }, (_, i) => `sim-alpha-${i}`).sort(),
      );
      const summary = simulation.summary();
      expect(summary.status).toMatchObject({ total: 12, enrolled: 12, online: 12, terminated: 0 });
      expect(summary.timeToAllOnlineMs).toBeGreaterThan(0);
      expect(summary.outages).toEqual([]);
    } finally {
      await simulation.stop();
    }
    const roster = await admin.runtimenode.roster.query({ sessionId });
    expect(roster.nodes.map((n) => n.state)).toEqual(Array(12).fill('offline'));
  });

  it('without a session the nodes only beat: online by presence, and nothing is attached', async () => {
    await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '10000' } });
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const events: SimEvent[] = [];
    const simulation = await startSimulation({
      url: server.url,
      enrollmentKey,
      count: 3,
      runId: 'beats',
      capabilities: {},
      commands: false,
      everyEvent: true,
      onEvent: (e) => events.push(e),
      nodeOptions: TEST_NODE_OPTIONS,
    });
    try {
      await simulation.waitUntil((s) => s.online === 3);
      const listed = await admin.node.list.query({
        healthState: 'online',
        label: 'tether.sim/run=beats',
        limit: 100,
      });
      expect(listed.items).toHaveLength(3);
      // Online through a beat each, never through an attach.
      expect(events.filter((e) => e.type === 'heartbeat').length).toBeGreaterThanOrEqual(3);
      expect(events.filter((e) => e.type === 'attached')).toEqual([]);
      const { rows } = await server.db.query<{ n: string }>(
        `SELECT count(*) AS n FROM runtime_node_attachments`,
      );
      expect(Number(rows[0]!.n)).toBe(0);
    } finally {
      await simulation.stop();
    }
    const roster = await admin.runtimenode.roster.query({ sessionId });
    expect(roster.nodes).toEqual([]);
  });

  it('saved identities are reused: a second run enrolls nothing and the same nodes come online', async () => {
    await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '10000' } });
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const identities: NodeCredentials[] = [];
    const first = await startSimulation({
      url: server.url,
      enrollmentKey,
      sessionId,
      count: 4,
      onEnrolled: (c) => identities.push(c),
      nodeOptions: TEST_NODE_OPTIONS,
    });
    await first.waitUntil((s) => s.online === 4);
    await first.stop();

    const second = await startSimulation({
      url: server.url,
      sessionId,
      count: 4,
      identities,
      nodeOptions: TEST_NODE_OPTIONS,
    });
    try {
      await second.waitUntil((s) => s.online === 4);
      expect(second.nodes.map((n) => n.nodeId)).toEqual(identities.map((c) => c.nodeId));
      const all = await admin.node.list.query({ limit: 100 });
      expect(all.items).toHaveLength(4);
    } finally {
      await second.stop();
    }
  });

  it('closed-loop start: at most startConcurrency nodes started and not yet online; everyEvent reports starts, attempts and beats; stop without detaching leaves the attachments', async () => {
    await using server = await startTestServer({
      env: { TETHER_RATE_PUBLIC_PER_MINUTE: '10000', ...FAST_BEATS },
    });
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const events: SimEvent[] = [];
    let waiting = 0;
    let mostWaiting = 0;
    const firstOnline = new Set<number>();
    const simulation = await startSimulation({
      url: server.url,
      enrollmentKey,
      sessionId,
      count: 8,
      startConcurrency: 2,
      everyEvent: true,
      nodeOptions: TEST_NODE_OPTIONS,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'started') mostWaiting = Math.max(mostWaiting, ++waiting);
        if (e.type === 'online' && !firstOnline.has(e.index)) {
          firstOnline.add(e.index);
          waiting--;
        }
      },
    });
    try {
      await simulation.waitUntil((s) => s.online === 8);
      await eventually(
        () => Promise.resolve(events.filter((e) => e.type === 'heartbeat').length),
        (beats) => beats >= 8,
      );
      expect(mostWaiting).toBe(2);
      const started = events.filter((e) => e.type === 'started').map((e) => e.index);
      expect(started.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(events.filter((e) => e.type === 'connecting').length).toBeGreaterThanOrEqual(8);
    } finally {
      await simulation.stop({ detach: false });
    }
    // Daemons gone, not leaving: their attachments are still active (a detaching stop ends them).
    const roster = await admin.runtimenode.roster.query({ sessionId });
    expect(roster.nodes.map((n) => n.state)).toEqual(Array(8).fill('online'));
  });

  it('churn: random disconnects and degraded periods; every dropped node comes back on its own (resumed or re-attached)', async () => {
    await using server = await startTestServer({
      env: { TETHER_RATE_PUBLIC_PER_MINUTE: '10000', TETHER_RATE_HEARTBEATS_PER_MINUTE: '6000' },
    });
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const seen = new Set<string>();
    const simulation = await startSimulation({
      url: server.url,
      enrollmentKey,
      sessionId,
      count: 6,
      churn: { meanIntervalMs: 100, disconnectShare: 0.7, degradedMs: [50, 150] },
      onEvent: (e) => seen.add(e.type),
      nodeOptions: TEST_NODE_OPTIONS,
    });
    try {
      await simulation.waitUntil((s) => s.reconnects >= 6 && s.disconnects >= 6, 30_000);
      await simulation.waitUntil(
        () => seen.has('churn_degraded') && seen.has('churn_recovered'),
        30_000,
      );
      expect(seen).toContain('churn_disconnect');
      const { rows } = await server.db.query<{ n: string }>(
        `SELECT count(*) AS n FROM fleet_events WHERE type = 'runtimenode.attached'`,
      );
      // Six first attaches; every reconnect since is a resume in the handshake or a re-attach.
      const resumed = await metricTotal(server.url, 'tether_ws_handshakes_total', {
        result: 'resumed',
      });
      expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(6);
      expect(Number(rows[0]!.n) - 6 + resumed).toBeGreaterThanOrEqual(6);
      expect(simulation.status().terminated).toBe(0);
    } finally {
      await simulation.stop();
    }
  });

  it('outage summary: after a server restart it reports when the nodes left, when the first and the last came back, and the spread', async () => {
    await using database = await persistentDatabase();
    const env = { TETHER_PORT: String(await freePort()), TETHER_RATE_PUBLIC_PER_MINUTE: '10000' };
    let server = await startTestServer({ databaseUrl: database.url, env });
    try {
      const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
      const simulation = await startSimulation({
        url: server.url,
        enrollmentKey,
        sessionId,
        count: 8,
        nodeOptions: TEST_NODE_OPTIONS,
      });
      try {
        await simulation.waitUntil((s) => s.online === 8);
        await server.stop();
        await simulation.waitUntil((s) => s.online === 0);
        server = await startTestServer({ databaseUrl: database.url, env });
        await simulation.waitUntil((s) => s.online === 8);
        const [outage, ...more] = simulation.summary().outages;
        expect(more).toEqual([]);
        expect(outage).toMatchObject({ minOnline: 0, spread: { count: 8 } });
        expect(outage!.firstBackAt).toBeGreaterThan(outage!.from);
        expect(outage!.to).toBeGreaterThanOrEqual(outage!.firstBackAt!);
        expect(outage!.reconnectMs).toBe(outage!.to! - outage!.firstBackAt!);
        expect(outage!.spread.max).toBe(outage!.reconnectMs);
        const roster = await operator(server.url, server.adminToken).runtimenode.roster.query({
          sessionId,
        });
        expect(roster.nodes.map((n) => n.state)).toEqual(Array(8).fill('online'));
      } finally {
        await simulation.stop();
      }
    } finally {
      await server.stop();
    }
  });

  it('many nodes in one process all beat on cadence against a real server, on one shared scheduler and keep-alive check (not timers per node)', async () => {
    // The server in its own process: this process's timers are then the nodes' alone.
    await using database = await persistentDatabase();
    const adminToken = `tpt_${randomBytes(24).toString('hex')}`;
    const server = await spawnServer({
      DATABASE_URL: database.url,
      TETHER_PORT: String(await freePort()),
      TETHER_BOOTSTRAP_TOKEN: adminToken,
      TETHER_RATE_PUBLIC_PER_MINUTE: '10000',
      ...FAST_BEATS,
    });
    const count = 120;
    try {
      const { admin, sessionId, enrollmentKey } = await seed(server.url, adminToken);
      const simulation = await startSimulation({
        url: server.url,
        enrollmentKey,
        sessionId,
        count,
        runId: 'cadence',
        commands: false,
        nodeOptions: TEST_NODE_OPTIONS,
      });
      try {
        await simulation.waitUntil((s) => s.online === count, 120_000);
        // Every node beats again and again at the advertised cadence (150 ms here).
        await eventually(
          () =>
            Promise.resolve(
              Math.min(...simulation.nodes.map(({ node }) => node.snapshot().heartbeats)),
            ),
          (fewest) => fewest >= 5,
          60_000,
        );
        expect(simulation.status()).toMatchObject({ online: count, terminated: 0 });
        // One pending beat per node on the shared scheduler, one watched socket per node.
        expect(processScheduler().size).toBeGreaterThanOrEqual(count);
        expect(processKeepAlive().size).toBe(count);
        // …and the process's Node timers do not grow with the nodes (before: a beat timer and
        // tRPC's keep-alive timer per node, i.e. ≥ 240 here).
        const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
        expect(timers).toBeLessThan(count / 4);
        const beating = await admin.node.list.query({
          healthState: 'online',
          label: 'tether.sim/run=cadence',
          limit: 200,
        });
        expect(beating.items).toHaveLength(count);
        const loop = simulation.loopDelay();
        expect(loop.maxMs).toBeGreaterThan(0);
        expect(loop.p99Ms).toBeLessThanOrEqual(loop.maxMs);
      } finally {
        await simulation.stop();
      }
      expect(processKeepAlive().size).toBe(0);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }, 240_000);
});
