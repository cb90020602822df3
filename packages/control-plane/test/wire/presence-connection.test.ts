/**
 * Presence follows the WebSocket (liveness of connected nodes): bound at connect, offline when the socket
 * closes or stops answering keep-alive pings, guarded by connection ids against reconnect races.
 */
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { mutate, query } from '../http.js';
import { rawNodeSocket } from '../raw-ws.js';
import { FAST_PRESENCE_ENV, startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, wsClient } from './actors.js';

interface PresenceRow {
  health_state: string;
  online_since: Date | null;
  connection_id: string | null;
}

async function presence(server: TestServer, nodeId: string): Promise<PresenceRow> {
  const { rows } = await server.db.query<PresenceRow>(
    `SELECT health_state, online_since, connection_id FROM runtime_node_presence WHERE node_id = $1`,
    [nodeId],
  );
  return rows[0]!;
}

async function presenceEvents(
  server: TestServer,
  nodeId: string,
): Promise<{ from: string; to: string; cause: string }[]> {
  const { rows } = await server.db.query<{ payload: { from: string; to: string; cause: string } }>(
    `SELECT payload FROM fleet_events WHERE node_id = $1 AND type = 'presence.changed' ORDER BY id`,
    [nodeId],
  );
  return rows.map((r) => r.payload);
}

const bound = (row: PresenceRow): boolean =>
  row.health_state === 'online' && row.connection_id !== null;
const released = (row: PresenceRow): boolean =>
  row.health_state === 'offline' && row.connection_id === null && row.online_since === null;

describe('presence bound to the WebSocket', () => {
  it('connect → online with online_since; close → offline, online_since cleared, within 5 s', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    expect((await presence(server, node.nodeId)).health_state).toBe('offline');

    const socket = await rawNodeSocket(server.wsUrl, node.token);
    const online = await eventually(() => presence(server, node.nodeId), bound);
    expect(online.online_since).toBeInstanceOf(Date);

    await socket.close();
    await eventually(() => presence(server, node.nodeId), released, 5_000);
    expect(await presenceEvents(server, node.nodeId)).toEqual([
      { from: 'offline', to: 'online', cause: 'connection' },
      { from: 'online', to: 'offline', cause: 'connection' },
    ]);
    // The identity and its presence row persist: its owner reads it as offline.
    const read = await query<{ nodeId: string; online: boolean; healthState: string }>(
      server.url,
      'node.isOnline',
      { nodeId: node.nodeId },
      { token: owner.token },
    );
    expect(read.status).toBe(200);
    expect(read.data).toMatchObject({
      nodeId: node.nodeId,
      online: false,
      healthState: 'offline',
      onlineSince: null,
    });
  });

  it('a socket that stops answering keep-alive pings is terminated and the node goes offline', async () => {
    await using server = await startTestServer({
      env: { TETHER_WS_PING_MS: '200', TETHER_WS_PONG_WAIT_MS: '200' },
    });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const silent = await rawNodeSocket(server.wsUrl, node.token, { answerPings: false });
    // It is pinged with protocol ping frames, and answers nothing.
    let pinged = 0;
    silent.ws.on('ping', () => pinged++);
    await eventually(() => presence(server, node.nodeId), bound);

    // Nothing is closed by the client: the server's keep-alive gives up and terminates.
    const code = await silent.closed;
    expect(code).toBe(1006);
    expect(pinged).toBeGreaterThan(0);
    await eventually(() => presence(server, node.nodeId), released, 5_000);
    expect((await presenceEvents(server, node.nodeId)).at(-1)).toEqual({
      from: 'online',
      to: 'offline',
      cause: 'connection',
    });
  });

  it('a socket that answers pings stays bound across many ping rounds', async () => {
    await using server = await startTestServer({
      env: { TETHER_WS_PING_MS: '100', TETHER_WS_PONG_WAIT_MS: '200' },
    });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const socket = await rawNodeSocket(server.wsUrl, node.token);
    await eventually(() => presence(server, node.nodeId), bound);
    // Protocol ping frames, answered by the client library (autoPong).
    let pings = 0;
    socket.ws.on('ping', () => pings++);
    await eventually(
      () => Promise.resolve(pings),
      (n) => n >= 5,
    );
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    expect(bound(await presence(server, node.nodeId))).toBe(true);
    await socket.close();
  });

  it('reconnect race: the close of the old socket, processed after the new bind, leaves the node online', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);

    const old = await rawNodeSocket(server.wsUrl, node.token);
    const first = await eventually(() => presence(server, node.nodeId), bound);
    // The node reconnects on a new socket while the old one is still open (e.g. a half-dead
    // network path): the new connection takes the binding.
    const fresh = await rawNodeSocket(server.wsUrl, node.token);
    const second = await eventually(
      () => presence(server, node.nodeId),
      (row) => bound(row) && row.connection_id !== first.connection_id,
    );
    // Only now does the old socket's close reach the server.
    old.destroy();
    await eventually(
      () => Promise.resolve(server.host.connections.size),
      (n) => n === 1,
    );
    await server.presence.idle();

    const after = await presence(server, node.nodeId);
    expect(after).toMatchObject({ health_state: 'online', connection_id: second.connection_id });
    expect(after.online_since).toEqual(first.online_since);
    expect(await presenceEvents(server, node.nodeId)).toEqual([
      { from: 'offline', to: 'online', cause: 'connection' },
    ]);

    await fresh.close();
    await eventually(() => presence(server, node.nodeId), released);
  });

  it('a socket closing while its bind is still in flight never leaves the node online', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    for (let i = 0; i < 5; i++) {
      const socket = await rawNodeSocket(server.wsUrl, node.token);
      socket.destroy();
    }
    await eventually(
      () => Promise.resolve(server.host.connections.size),
      (n) => n === 0,
    );
    await eventually(
      async () => {
        await server.presence.idle();
        return presence(server, node.nodeId);
      },
      (row) => row.health_state === 'offline' && row.connection_id === null,
    );
    expect(server.presence.size).toBe(0);
  });

  it('a beat on the socket after a sweep took the node offline binds that socket again', async () => {
    await using server = await startTestServer({
      env: FAST_PRESENCE_ENV,
    });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const socket = await rawNodeSocket(server.wsUrl, node.token);
    await eventually(() => presence(server, node.nodeId), bound);
    // No beats: the sweep demotes it by age and clears the binding, socket still open.
    await eventually(() => presence(server, node.nodeId), released);
    await socket.call('mutation', 'runtimenode.heartbeat', {
      nodeId: node.nodeId,
      healthState: 'online',
    });
    await eventually(() => presence(server, node.nodeId), bound);
    await socket.close();
    await eventually(() => presence(server, node.nodeId), released);
    expect((await presenceEvents(server, node.nodeId)).map((e) => `${e.to}:${e.cause}`)).toEqual([
      'online:connection',
      'degraded:sweep',
      'offline:sweep',
      'online:heartbeat',
      'offline:connection',
    ]);
  });

  it('HTTP-only nodes are governed by heartbeats and the sweep alone', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const beat = await mutate(
      server.url,
      'runtimenode.heartbeat',
      { nodeId: node.nodeId, healthState: 'online' },
      { token: node.token },
    );
    expect(beat.status).toBe(200);
    const row = await presence(server, node.nodeId);
    expect(row).toMatchObject({ health_state: 'online', connection_id: null });
  });

  it('a graceful stop takes every node bound to this replica offline in one go', async () => {
    const database = await createTestDatabase();
    try {
      const server = await startTestServer({ databaseUrl: database.url });
      const owner = await participant(server);
      const nodes = [await nodeOf(server, owner), await nodeOf(server, owner)];
      const sockets = nodes.map((n) => wsClient(server, { token: n.token }));
      // A call opens each socket and authenticates it.
      await Promise.all(sockets.map((s) => s.client.system.info.query()));
      for (const n of nodes) await eventually(() => presence(server, n.nodeId), bound);
      await server.stop();
      const { rows } = await database.db.query<{ health_state: string; cause: string | null }>(
        `SELECT p.health_state,
                (SELECT e.payload->>'cause' FROM fleet_events e
                  WHERE e.node_id = p.node_id ORDER BY e.id DESC LIMIT 1) AS cause
           FROM runtime_node_presence p WHERE p.node_id = ANY($1)`,
        [nodes.map((n) => n.nodeId)],
      );
      expect(rows.map((r) => `${r.health_state}:${r.cause}`)).toEqual([
        'offline:connection',
        'offline:connection',
      ]);
      await Promise.all(sockets.map((s) => s.close()));
    } finally {
      await database.drop();
    }
  });
});
