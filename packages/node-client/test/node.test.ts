/**
 * The SDK against a real server (in-process, real PostgreSQL, real HTTP and WebSocket):
 * enroll → attach → online, heartbeats, metrics, health, capabilities, read-only, stop.
 */
import { TetherError } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { createTetherNode, type NodeConnectionState, type NodeCredentials } from '../src/index.js';
import {
  FAST_BEATS,
  TEST_BACKOFF,
  enrolled,
  eventually,
  events,
  fastPresenceEnv,
  nextEvent,
  operator,
  seed,
  startTestServer,
  testNode,
  type TestServer,
} from './support.js';

async function presence(server: TestServer, nodeId: string) {
  return operator(server.url, server.adminToken).node.isOnline.query({ nodeId });
}

async function roster(server: TestServer, sessionId: string) {
  const { nodes } = await operator(server.url, server.adminToken).runtimenode.roster.query({
    sessionId,
  });
  return nodes;
}

describe('node lifecycle against a real server', () => {
  it('enroll end to end: enrollWithKey → createTetherNode attaches, declares capabilities, and the API lists it online with them', async () => {
    await using server = await startTestServer();
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey, 'press-7');
    expect(credentials).toMatchObject({ url: server.url, nodeId: 'press-7' });
    expect(credentials.token).toMatch(/^tnd_/);

    await using node = testNode(credentials, {
      sessionId,
      capabilities: { shell: {}, gpu: { version: '12' } },
    });
    const states: NodeConnectionState[] = [];
    node.on('state', (s) => states.push(s));
    const attached = nextEvent(node, 'attached');
    await node.start();
    await node.waitFor('online');
    expect((await attached).attachment).toMatchObject({ readOnly: false });
    expect(states).toEqual(['connecting', 'attached', 'online']);

    expect(await roster(server, sessionId)).toEqual([
      expect.objectContaining({
        nodeId: 'press-7',
        state: 'online',
        healthState: 'online',
        readOnly: false,
        capabilities: { shell: {}, gpu: { version: '12' } },
      }),
    ]);
    const found = await admin.node.findOnlineWithCapability.query({ capability: 'gpu', sessionId });
    expect(found.items.map((n) => n.nodeId)).toEqual(['press-7']);
    expect(await presence(server, 'press-7')).toMatchObject({ online: true });
  });

  it('enrollment option: the node enrolls on start, hands its credentials to onEnrolled and comes online', async () => {
    await using server = await startTestServer();
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const saved: NodeCredentials[] = [];
    const node = createTetherNode({
      url: server.url,
      enrollment: { enrollmentKey, name: 'self-enrolling', nodeType: 'edge', nodeId: 'edge-1' },
      onEnrolled: (c) => {
        saved.push(c);
      },
      sessionId,
      capabilities: { plc: {} },
      backoff: TEST_BACKOFF,
    });
    try {
      await node.start();
      await node.waitFor('online');
      expect(saved).toEqual([expect.objectContaining({ nodeId: 'edge-1', url: server.url })]);
      expect(node.nodeId).toBe('edge-1');
      expect(await roster(server, sessionId)).toEqual([
        expect.objectContaining({ nodeId: 'edge-1', state: 'online', capabilities: { plc: {} } }),
      ]);
    } finally {
      await node.stop();
    }
  });

  it('an enrollment the server refuses for good (unknown key) terminates the node with that code and never connects', async () => {
    await using server = await startTestServer();
    const node = createTetherNode({
      url: server.url,
      enrollment: { enrollmentKey: 'tek_no-such-key-000000000000', name: 'x', nodeType: 'edge' },
      backoff: TEST_BACKOFF,
    });
    await node.start();
    await expect(node.waitFor('online')).rejects.toThrow(/terminated/);
    expect(node.termination).toMatchObject({ code: 'enrollment.key_invalid' });
    expect(node.snapshot().connectAttempts).toBe(0);
  });

  it('heartbeats keep a node online: the sweep demotes an attached node that does not beat, while the beating agent stays online', async () => {
    await using server = await startTestServer({
      env: {
        ...FAST_BEATS,
        ...fastPresenceEnv(600),
      },
    });
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using beating = testNode(await enrolled(server.url, enrollmentKey), {
      sessionId,
      capabilities: { shell: {} },
    });
    // The control differs only in never beating after its attach (a cadence of an hour).
    await using silent = testNode(await enrolled(server.url, enrollmentKey), {
      sessionId,
      capabilities: { shell: {} },
      heartbeatIntervalMs: 3_600_000,
    });
    await beating.start();
    await silent.start();
    await beating.waitFor('online');
    await silent.waitFor('online');
    expect(beating.snapshot().serverInfo?.heartbeatIntervalMs).toBe(150);

    await eventually(
      () => presence(server, silent.nodeId!),
      (p) => p.healthState === 'offline',
    );
    const alive = await presence(server, beating.nodeId!);
    expect(alive).toMatchObject({ online: true, healthState: 'online' });
    // Its last beat is recent by the database clock: well inside the 600 ms degraded threshold.
    const { rows } = await server.db.query<{ fresh: boolean }>(
      `SELECT last_heartbeat_at > now() - interval '600 milliseconds' AS fresh
         FROM runtime_node_presence WHERE node_id = $1`,
      [beating.nodeId],
    );
    expect(rows[0]?.fresh).toBe(true);
    expect(beating.snapshot().heartbeats).toBeGreaterThan(3);
    expect(silent.snapshot().heartbeats).toBe(0);
  });

  it('reportMetrics: CPU %, memory used/total, uptime and custom gauges go out with the next beat', async () => {
    await using server = await startTestServer({ env: FAST_BEATS });
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = testNode(credentials, { sessionId, capabilities: { shell: {} } });
    await node.start();
    await node.waitFor('online');
    const reported = node.reportMetrics({ queue_depth: 7 });
    expect(reported.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(reported.cpuPercent).toBeLessThanOrEqual(100);
    expect(reported.memoryTotalBytes).toBeGreaterThan(0);
    expect(reported.memoryUsedBytes).toBeLessThanOrEqual(reported.memoryTotalBytes!);
    expect(reported.uptimeSeconds).toBeGreaterThan(0);
    expect(reported.gauges).toEqual({ queue_depth: 7 });
    const beat = await nextEvent(node, 'heartbeat');
    expect(beat.metrics).toEqual(reported);
    const { rows } = await server.db.query<{ metrics: unknown }>(
      `SELECT metrics FROM runtime_node_presence WHERE node_id = $1`,
      [credentials.nodeId],
    );
    expect(rows[0]?.metrics).toEqual(reported);
    // Invalid gauges are the caller's bug, refused before anything is sent.
    expect(() => node.reportMetrics({ 'Bad Name': 1 })).toThrow(TetherError);
  });

  it('setHealth(degraded) reaches the attachment and presence; setHealth(online) brings both back', async () => {
    await using server = await startTestServer({ env: FAST_BEATS });
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using node = testNode(await enrolled(server.url, enrollmentKey), {
      sessionId,
      capabilities: { shell: {} },
    });
    await node.start();
    await node.waitFor('online');
    await expect(node.setHealth('degraded', 'disk almost full')).resolves.toMatchObject({
      state: 'degraded',
    });
    expect(await roster(server, sessionId)).toEqual([
      expect.objectContaining({ state: 'degraded', healthState: 'degraded' }),
    ]);
    await expect(node.setHealth('online')).resolves.toMatchObject({ state: 'online' });
    expect(await roster(server, sessionId)).toEqual([
      expect.objectContaining({ state: 'online', healthState: 'online' }),
    ]);
  });

  it('updateCapabilities while online: roster and capability search see the new declaration; a refused one is not kept', async () => {
    await using server = await startTestServer();
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using node = testNode(await enrolled(server.url, enrollmentKey), {
      sessionId,
      capabilities: { shell: {} },
    });
    await node.start();
    await node.waitFor('online');
    await expect(
      node.updateCapabilities({ shell: {}, camera: { description: 'usb cam' } }),
    ).resolves.toMatchObject({ state: 'online' });
    expect((await roster(server, sessionId))[0]?.capabilities).toEqual({
      shell: {},
      camera: { description: 'usb cam' },
    });
    const found = await admin.node.findOnlineWithCapability.query({ capability: 'camera' });
    expect(found.items.map((n) => n.nodeId)).toEqual([node.nodeId]);
    // Emptying the declaration of an online attachment is refused by the server; the SDK keeps
    // the previous declaration and surfaces the registry code.
    const refused = await node.updateCapabilities({}).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TetherError);
    expect((refused as TetherError).code).toBe('runtimenode.capabilityupdate_conflict');
    expect(node.snapshot().capabilities).toEqual({ shell: {}, camera: { description: 'usb cam' } });
    expect(node.state).toBe('online');
  });

  it('a node without capabilities attaches but stays registering (attached) until it declares some', async () => {
    await using server = await startTestServer();
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using node = testNode(await enrolled(server.url, enrollmentKey), { sessionId });
    await node.start();
    await node.waitFor('attached');
    expect(await roster(server, sessionId)).toEqual([
      expect.objectContaining({ state: 'registering' }),
    ]);
    const online = nextEvent(node, 'online');
    await node.updateCapabilities({ shell: {} });
    await online;
    expect(node.state).toBe('online');
    expect(await roster(server, sessionId)).toEqual([expect.objectContaining({ state: 'online' })]);
  });

  it('without a session: the node declares its capabilities and beats; presence is online', async () => {
    await using server = await startTestServer({ env: FAST_BEATS });
    const { admin, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = testNode(credentials, { capabilities: { shell: {} } });
    await node.start();
    await node.waitFor('online');
    expect(await presence(server, credentials.nodeId)).toMatchObject({ online: true });
    const view = await admin.node.get.query({ nodeId: credentials.nodeId });
    expect(view).toMatchObject({ capabilities: { shell: {} }, activeAttachment: null });
  });

  it('read-only agent (session floor above its version) keeps beating and gets version.floor_exceeded on capability updates, without being disconnected', async () => {
    await using server = await startTestServer({ env: FAST_BEATS });
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken, {
      minNodeVersion: '1.5',
    });
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = testNode(credentials, {
      sessionId,
      nodeVersion: '1.2',
      capabilities: { shell: {} },
    });
    const readOnly = nextEvent(node, 'read_only');
    await node.start();
    await node.waitFor('attached');
    await readOnly;
    expect(node.snapshot()).toMatchObject({ readOnly: true, state: 'attached' });
    expect(await roster(server, sessionId)).toEqual([
      expect.objectContaining({ readOnly: true, nodeVersion: '1.2' }),
    ]);

    const error = await node.updateCapabilities({ shell: {}, gpu: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TetherError);
    expect((error as TetherError).code).toBe('version.floor_exceeded');
    // Still connected and beating: the database's last beat moves on.
    const before = await presence(server, credentials.nodeId);
    await events(node, 'heartbeat', 2);
    const after = await presence(server, credentials.nodeId);
    expect(after.online).toBe(true);
    expect(after.lastHeartbeatAt!.getTime()).toBeGreaterThan(before.lastHeartbeatAt!.getTime());
    expect(node.snapshot()).toMatchObject({ state: 'attached', reconnects: 0, connectAttempts: 1 });
    // The refused declaration is not kept (a re-attach must not sneak it in).
    expect(node.snapshot().capabilities).toEqual({ shell: {} });
  });

  it('stop() detaches cleanly: attachment and presence offline, socket closed, no retry pending', async () => {
    await using server = await startTestServer();
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    const node = testNode(credentials, { sessionId, capabilities: { shell: {} } });
    await node.start();
    await node.waitFor('online');
    expect(server.host.connections.size).toBe(1);
    await node.stop({ reason: 'maintenance' });
    expect(node.state).toBe('stopped');
    expect(node.snapshot()).toMatchObject({ openSockets: 0, nextAttemptAt: null });
    expect(await roster(server, sessionId)).toEqual([
      expect.objectContaining({ state: 'offline', healthState: 'offline' }),
    ]);
    await eventually(
      () => Promise.resolve(server.host.connections.size),
      (n) => n === 0,
    );
    await node.stop(); // idempotent
    expect(node.state).toBe('stopped');
  });

  it('observable connection state: states() yields the current state and every change until stopped', async () => {
    await using server = await startTestServer();
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const node = testNode(await enrolled(server.url, enrollmentKey), {
      sessionId,
      capabilities: { shell: {} },
    });
    const seen: NodeConnectionState[] = [];
    const consumed = (async () => {
      for await (const state of node.states()) {
        seen.push(state);
        if (state === 'online') void node.stop();
      }
    })();
    await node.start();
    await consumed;
    expect(seen).toEqual(['idle', 'connecting', 'attached', 'online', 'stopped']);
  });

  it('tokens are never logged: a whole life (connect, beat, failure, revocation) leaves no token in the logger output', async () => {
    await using server = await startTestServer({ env: FAST_BEATS });
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    const lines: string[] = [];
    const record =
      (level: string) =>
      (obj: Record<string, unknown>, msg?: string): void => {
        lines.push(
          `${level} ${msg ?? ''} ${JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack } : v))}`,
        );
      };
    const logger = {
      debug: record('debug'),
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
    };
    await using node = testNode(credentials, { sessionId, capabilities: { shell: {} }, logger });
    await node.start();
    await node.waitFor('online');
    await events(node, 'heartbeat', 2);
    await node.updateCapabilities({}).catch(() => undefined);
    node.disconnect('test drop');
    await nextEvent(node, 'online');
    await admin.node.revoke.mutate({ nodeId: credentials.nodeId });
    await node.waitFor('terminated');
    const output = lines.join('\n');
    expect(output).toMatch(/terminated/);
    expect(output).toContain(credentials.nodeId);
    expect(output).not.toContain(credentials.token);
    expect(output).not.toContain(credentials.token.slice(4, 20));
  });
});
