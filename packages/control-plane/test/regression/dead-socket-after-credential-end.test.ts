/**
 * Regression: a client that ignores the close frame kept acting after its credential ended.
 * After the 4401 close, calls sent on the same socket were still executed until the `ws` close
 * timeout (~30 s); with a rotated node token the old socket changed capabilities and health.
 * Rule: a socket whose credential ended executes no further message (every one is refused with
 * auth.unauthenticated), and it is terminated shortly after the close frame even if the client
 * never answers it.
 */
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { metricSample, mutate } from '../http.js';
import { stubbornSocket } from '../raw-ws.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant } from './../wire/actors.js';

const calls = (server: TestServer, procedure: string, code: string) =>
  metricSample(
    server.url,
    `tether_rpc_requests_total{procedure="${procedure}",code="${code}",transport="ws"}`,
  );

describe('a socket whose credential ended is dead', () => {
  it('revoked participant token: session.create frames sent after the 4401 close are all refused, none committed, and the socket is terminated', async () => {
    await using server = await startTestServer();
    const member = await participant(server);
    const issued = await mutate<{ tokenId: string; token: string }>(
      server.url,
      'token.create',
      { name: 'stubborn' },
      { token: member.token },
    );
    const socket = await stubbornSocket(server.wsUrl, issued.data.token);
    // Authenticated and serving: one call goes through.
    expect(await socket.call('query', 'session.list', {})).toMatchObject({
      result: { type: 'data' },
    });

    const revoked = await mutate(
      server.url,
      'token.revoke',
      { tokenId: issued.data.tokenId },
      { token: member.token },
    );
    expect(revoked.status).toBe(200);
    expect(await socket.closeFrame).toBe(4401);

    const sent = 5;
    for (let i = 0; i < sent; i++) socket.send('mutation', 'session.create', { name: `late-${i}` });
    // Terminated without the client ever answering the close frame.
    await socket.ended;
    // Every frame that reached the server was answered by the procedure chain: wait for all.
    const refused = await eventually(
      async () => ({
        refused: await calls(server, 'session.create', 'auth.unauthenticated'),
        executed: await calls(server, 'session.create', 'ok'),
      }),
      (c) => c.refused + c.executed >= sent,
    );
    expect(refused).toEqual({ refused: sent, executed: 0 });
    const { rows } = await server.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM sessions WHERE created_by = $1`,
      [member.participantId],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('rotated node token: capability updates and heartbeats on the old socket after the 4401 close change nothing', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const socket = await stubbornSocket(server.wsUrl, node.token);
    expect(
      await socket.call('mutation', 'runtimenode.heartbeat', {
        nodeId: node.nodeId,
        healthState: 'online',
      }),
    ).toMatchObject({ result: { type: 'data' } });
    const before = await server.db.query<{ capabilities: unknown; last_heartbeat_at: Date }>(
      `SELECT n.capabilities, p.last_heartbeat_at
         FROM nodes n JOIN runtime_node_presence p USING (node_id) WHERE n.node_id = $1`,
      [node.nodeId],
    );

    const rotated = await mutate<{ nodeToken: string }>(
      server.url,
      'node.rotateToken',
      {},
      { token: node.token },
    );
    expect(rotated.status).toBe(200);
    expect(await socket.closeFrame).toBe(4401);

    const rounds = 4;
    for (let i = 0; i < rounds; i++) {
      socket.send('mutation', 'runtimenode.capabilityupdate', {
        nodeId: node.nodeId,
        capabilities: { [`stolen${i}`]: {} },
      });
      socket.send('mutation', 'runtimenode.heartbeat', {
        nodeId: node.nodeId,
        healthState: 'degraded',
      });
    }
    await socket.ended;
    const outcome = await eventually(
      async () => ({
        beatsRefused: await calls(server, 'runtimenode.heartbeat', 'auth.unauthenticated'),
        updatesRefused: await calls(server, 'runtimenode.capabilityupdate', 'auth.unauthenticated'),
        beatsExecuted: (await calls(server, 'runtimenode.heartbeat', 'ok')) - 1,
        updatesExecuted: await calls(server, 'runtimenode.capabilityupdate', 'ok'),
      }),
      (c) =>
        c.beatsRefused + c.beatsExecuted >= rounds &&
        c.updatesRefused + c.updatesExecuted >= rounds,
    );
    expect(outcome).toEqual({
      beatsRefused: rounds,
      updatesRefused: rounds,
      beatsExecuted: 0,
      updatesExecuted: 0,
    });
    const after = await server.db.query(
      `SELECT n.capabilities, p.last_heartbeat_at
         FROM nodes n JOIN runtime_node_presence p USING (node_id) WHERE n.node_id = $1`,
      [node.nodeId],
    );
    expect(after.rows).toEqual(before.rows);
  });
});
