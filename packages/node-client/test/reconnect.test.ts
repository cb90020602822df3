/**
 * Surviving outages without a human: a dropped socket, a graceful server restart (the server's
 * reconnect notification) and a killed server (kill -9) started again on the same address.
 * Each time the agents reconnect with backoff, re-attach, re-declare their capabilities and are
 * online again — checked through the API and the database, not only the SDK's own view.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { spawnServer } from '@tether/control-plane/testing';
import type { TetherNode } from '../src/index.js';
import {
  FAST_BEATS,
  TEST_BACKOFF,
  enrolled,
  eventually,
  freePort,
  metricTotal,
  nextEvent,
  operator,
  persistentDatabase,
  seed,
  startTestServer,
  sessionNode,
} from './support.js';

describe('reconnection', () => {
  it('a dropped connection is retried after a backoff; the node resumes its attachment in the handshake (no attach, no system.info) on its own', async () => {
    await using server = await startTestServer();
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = sessionNode(credentials, sessionId);
    await node.start();
    await node.waitFor('online');
    const firstAttachment = node.snapshot().attachment?.attachmentId;
    const scheduled = nextEvent(node, 'reconnect_scheduled');
    const reattached = nextEvent(node, 'attached');
    const back = nextEvent(node, 'online');
    const disconnected = nextEvent(node, 'disconnected');
    node.disconnect('test');
    expect((await disconnected).cause).toEqual({ kind: 'dropped', reason: 'test' });
    const { delayMs, attempt } = await scheduled;
    expect(attempt).toBe(0);
    expect(delayMs).toBeGreaterThanOrEqual(0);
    expect(delayMs).toBeLessThanOrEqual(TEST_BACKOFF.baseMs);
    const online = await back;
    expect(online.reconnect).toBe(true);
    expect(online.downtimeMs).toBeGreaterThanOrEqual(0);
    expect(node.snapshot()).toMatchObject({ reconnects: 1, connectAttempts: 2 });
    // Resumed in the handshake: the same attachment, and the server served one attach and no
    // system.info at all (the first connection's answer came in its handshake too).
    const again = await reattached;
    expect(again).toMatchObject({ reconnect: true, resumed: true });
    expect(again.attachment.attachmentId).toBe(firstAttachment);
    expect(node.snapshot().attachment?.attachmentId).toBe(firstAttachment);
    expect(await metricTotal(server.url, 'tether_ws_handshakes_total', { result: 'resumed' })).toBe(
      1,
    );
    expect(await metricTotal(server.url, 'tether_ws_handshakes_total', { result: 'fresh' })).toBe(
      1,
    );
    const calls = (procedure: string) =>
      metricTotal(server.url, 'tether_rpc_requests_total', { procedure });
    expect(await calls('runtimenode.attach')).toBe(1);
    expect(await calls('system.info')).toBe(0);
    // Online with the attach itself (its healthChanges): no capability update at all.
    expect(await calls('runtimenode.capabilityupdate')).toBe(0);
    // One attach event (the first connection's) and its state change to online; the reconnect
    // wrote only what changed (presence, through the connection).
    const { rows } = await server.db.query<{ type: string; n: string }>(
      `SELECT type, count(*) AS n FROM fleet_events WHERE node_id = $1 AND type IN
         ('runtimenode.attached', 'runtimenode.state_changed', 'runtimenode.capabilities_updated')
        GROUP BY type ORDER BY type`,
      [credentials.nodeId],
    );
    expect(rows.map((r) => [r.type, Number(r.n)])).toEqual([
      ['runtimenode.attached', 1],
      ['runtimenode.state_changed', 1],
    ]);
    const presence = await eventually(
      () =>
        operator(server.url, server.adminToken).node.isOnline.query({ nodeId: credentials.nodeId }),
      (p) => p.online,
    );
    expect(presence.healthState).toBe('online');
    const roster = await operator(server.url, server.adminToken).runtimenode.roster.query({
      sessionId,
    });
    expect(roster.nodes).toEqual([expect.objectContaining({ state: 'online' })]);
  });

  it('over the server admission limit: a refused node waits the time the server gave (not its backoff), then comes online', async () => {
    // Real pressure instead of a race against the clock: the pool's only connection is held, so
    // the first node's handshake stays in flight (its credential lookup waits) and, with one
    // handshake allowed at a time, the others are refused however slowly they start. The rate
    // cap (1/s) paces the server's answers a second apart, far above the test backoff's cap.
    await using server = await startTestServer({
      env: {
        TETHER_DB_POOL_MAX: '1',
        TETHER_WS_MAX_HANDSHAKES: '1',
        TETHER_WS_ADMIT_PER_SECOND: '1',
      },
    });
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const nodes = await Promise.all(
      [0, 1, 2].map(async () => sessionNode(await enrolled(server.url, enrollmentKey), sessionId)),
    );
    const waits: { serverWaitMs: number; delayMs: number }[] = [];
    const refusedNodes = new Set<TetherNode>();
    for (const node of nodes) {
      let serverWait: number | undefined;
      node.on('connect_failed', ({ cause }) => {
        serverWait = cause.kind === 'open_failed' ? cause.retryAfterMs : undefined;
        if (serverWait !== undefined) refusedNodes.add(node);
      });
      node.on('reconnect_scheduled', ({ delayMs }) => {
        if (serverWait !== undefined) waits.push({ serverWaitMs: serverWait, delayMs });
      });
    }
    let release!: () => void;
    const held = server.db.withClient(() => new Promise<void>((resolve) => (release = resolve)));
    try {
      // One after the other, however long that takes: the first holds the only handshake slot.
      await nodes[0]!.start();
      await eventually(
        () => Promise.resolve(server.admission.snapshot().inFlight),
        (n) => n === 1,
      );
      await nodes[1]!.start();
      await nodes[2]!.start();
      await eventually(
        () => Promise.resolve(refusedNodes.size),
        (n) => n >= 2,
      );
      release();
      await held;
      await Promise.all(nodes.map((node) => node.waitFor('online')));
    } finally {
      release();
      await Promise.all(nodes.map((node) => node.stop()));
    }
    expect(waits.length).toBeGreaterThanOrEqual(2);
    for (const { serverWaitMs, delayMs } of waits) {
      // The server's slot (a second apart at the 1/s cap), far above the test backoff's 300 ms
      // cap, plus at most one base window of jitter.
      expect(serverWaitMs).toBeGreaterThan(TEST_BACKOFF.capMs);
      expect(delayMs).toBeGreaterThanOrEqual(serverWaitMs);
      expect(delayMs).toBeLessThan(serverWaitMs + TEST_BACKOFF.baseMs);
    }
  });

  it('graceful server restart: the agents obey the reconnect notification, come back on their own and declare what changed while the server was down', async () => {
    await using database = await persistentDatabase();
    const port = await freePort();
    const env = { ...FAST_BEATS, TETHER_PORT: String(port) };
    let server = await startTestServer({ databaseUrl: database.url, env });
    try {
      const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
      const nodes = await Promise.all(
        [0, 1, 2].map(async () =>
          sessionNode(await enrolled(server.url, enrollmentKey), sessionId),
        ),
      );
      try {
        for (const node of nodes) await node.start();
        for (const node of nodes) await node.waitFor('online');

        const left = nodes.map((node) => nextEvent(node, 'disconnected'));
        await server.stop();
        for (const { cause } of await Promise.all(left)) {
          expect(cause).toEqual({ kind: 'reconnect_requested' });
        }
        // A declaration made while offline is kept and sent at the next connection.
        await expect(nodes[0]!.updateCapabilities({ shell: {}, gpu: {} })).resolves.toBeNull();

        const back = nodes.map((node) => nextEvent(node, 'online'));
        const attached = nodes.map((node) => nextEvent(node, 'attached'));
        server = await startTestServer({ databaseUrl: database.url, env });
        for (const online of await Promise.all(back)) expect(online.reconnect).toBe(true);
        // The node whose capabilities changed was not resumed and attached; the others resumed.
        expect((await Promise.all(attached)).map((e) => e.resumed)).toEqual([false, true, true]);
        const handshakes = (result: string) =>
          metricTotal(server.url, 'tether_ws_handshakes_total', { result });
        expect(await handshakes('resumed')).toBe(2);
        expect(await handshakes('not_resumed:capabilities_changed')).toBe(1);
        expect(
          await metricTotal(server.url, 'tether_rpc_requests_total', {
            procedure: 'runtimenode.attach',
          }),
        ).toBe(1);

        const roster = await operator(server.url, server.adminToken).runtimenode.roster.query({
          sessionId,
        });
        expect(roster.nodes).toHaveLength(3);
        for (const entry of roster.nodes) {
          expect(entry).toMatchObject({ state: 'online', healthState: 'online' });
        }
        const first = roster.nodes.find((n) => n.nodeId === nodes[0]!.nodeId);
        expect(first?.capabilities).toEqual({ shell: {}, gpu: {} });
        const view = await operator(server.url, server.adminToken).node.get.query({
          nodeId: nodes[0]!.nodeId!,
        });
        expect(view.capabilities).toEqual({ shell: {}, gpu: {} });
        await eventually(
          () => Promise.resolve(server.host.connections.size),
          (n) => n === 3,
        );
      } finally {
        await Promise.all(nodes.map((node) => node.stop()));
      }
    } finally {
      await server.stop();
    }
  });

  it('kill -9 the server and start it again: agents reconnect, re-attach and are online again without intervention', async () => {
    await using database = await persistentDatabase();
    const adminToken = `tpt_${randomBytes(24).toString('hex')}`;
    const env = {
      ...FAST_BEATS,
      DATABASE_URL: database.url,
      TETHER_PORT: String(await freePort()),
      TETHER_BOOTSTRAP_TOKEN: adminToken,
    };
    let server = await spawnServer(env);
    const nodes: (TetherNode & AsyncDisposable)[] = [];
    try {
      const { sessionId, enrollmentKey } = await seed(server.url, adminToken);
      for (let i = 0; i < 3; i++) {
        nodes.push(sessionNode(await enrolled(server.url, enrollmentKey), sessionId));
      }
      for (const node of nodes) await node.start();
      for (const node of nodes) await node.waitFor('online');
      let connectFailures = 0;
      for (const node of nodes) node.on('connect_failed', () => connectFailures++);

      const lost = nodes.map((node) => nextEvent(node, 'disconnected'));
      server.child.kill('SIGKILL');
      expect(await server.exited).toBe('SIGKILL');
      for (const { cause } of await Promise.all(lost)) expect(cause.kind).toBe('closed');

      const { rows } = await database.db.query<{ now: Date }>('SELECT now() AS now');
      const restartedAt = rows[0]!.now.getTime();
      const attached = nodes.map((node) => nextEvent(node, 'attached'));
      server = await spawnServer(env);
      for (const e of await Promise.all(attached)) {
        expect(e).toMatchObject({ reconnect: true, resumed: true });
      }
      for (const node of nodes) await node.waitFor('online');
      // Resumed in the handshake: no attach and no system.info reached the new process.
      expect(
        await metricTotal(server.url, 'tether_ws_handshakes_total', { result: 'resumed' }),
      ).toBe(3);
      for (const procedure of [
        'runtimenode.attach',
        'system.info',
        'runtimenode.capabilityupdate',
      ]) {
        expect(
          await metricTotal(server.url, 'tether_rpc_requests_total', { procedure }),
          procedure,
        ).toBe(0);
      }

      // The server's view: every node attached again after the restart and is online.
      const admin = operator(server.url, adminToken);
      for (const node of nodes) {
        const presence = await eventually(
          () => admin.node.isOnline.query({ nodeId: node.nodeId! }),
          (p) => p.online && (p.lastHeartbeatAt?.getTime() ?? 0) > restartedAt,
        );
        expect(presence.healthState).toBe('online');
      }
      const roster = await admin.runtimenode.roster.query({ sessionId });
      expect(roster.nodes.map((n) => n.state)).toEqual(['online', 'online', 'online']);
      // They tried while the server was down (connection refused), and kept going.
      expect(connectFailures).toBeGreaterThan(0);
      for (const node of nodes) expect(node.snapshot().reconnects).toBe(1);
    } finally {
      await Promise.all(nodes.map((node) => node.stop()));
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});
