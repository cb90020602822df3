/**
 * Rotating a node's token while it is connected: the socket that authenticated with the old
 * token is closed with the terminal code (the client must not reconnect with that token), a
 * socket opened with the old token is refused, and the new token opens a socket that works. Whether the node rotates itself on its own socket
 * (`node.rotateToken`) or its owner reissues it (`node.reissueToken`).
 */
import { isTerminalCloseCode, WS_CLOSE } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { mutate } from '../http.js';
import { rawNodeSocket, type RawNodeSocket } from '../raw-ws.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, type NodeActor } from './actors.js';

/**
 * Sockets are revalidated once per auth cache TTL: a long one leaves the rotation itself (its
 * revocation, on every replica) as what must close the socket.
 */
const NO_REVALIDATION = { env: { TETHER_AUTH_CACHE_TTL_MS: '600000' } };

async function boundConnection(server: TestServer, nodeId: string): Promise<string | null> {
  const { rows } = await server.db.query<{ connection_id: string | null }>(
    `SELECT connection_id FROM runtime_node_presence WHERE node_id = $1`,
    [nodeId],
  );
  return rows[0]?.connection_id ?? null;
}

const beatOn = (socket: RawNodeSocket, node: NodeActor) =>
  socket.call('mutation', 'runtimenode.heartbeat', { nodeId: node.nodeId, healthState: 'online' });

/** The old socket closed terminally; a socket with the old token is refused; the new one works. */
async function expectRotated(
  server: TestServer,
  node: NodeActor,
  old: RawNodeSocket,
  newToken: string,
): Promise<void> {
  const code = await old.closed;
  expect(code).toBe(WS_CLOSE.CREDENTIAL_REVOKED);
  expect(isTerminalCloseCode(code)).toBe(true);

  const stale = await rawNodeSocket(server.wsUrl, node.token);
  expect(await beatOn(stale, node)).toMatchObject({
    error: { data: { tetherError: { code: 'auth.unauthenticated' } } },
  });
  await stale.close();

  const fresh = await rawNodeSocket(server.wsUrl, newToken);
  expect(await beatOn(fresh, node)).toMatchObject({ result: { type: 'data', data: null } });
  await eventually(
    () => boundConnection(server, node.nodeId),
    (id) => id !== null,
  );
  await fresh.close();
}

describe('token rotation with a live WebSocket', () => {
  it('node.rotateToken on the node’s own socket: the answer carries the new token, then the socket closes 4401', async () => {
    await using server = await startTestServer(NO_REVALIDATION);
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const socket = await rawNodeSocket(server.wsUrl, node.token);
    expect(await beatOn(socket, node)).toMatchObject({ result: { type: 'data' } });

    const answer = (await socket.call('mutation', 'node.rotateToken', {})) as {
      result: { data: { nodeToken: string } };
    };
    const newToken = answer.result.data.nodeToken;
    expect(newToken).toMatch(/^tnd_/);
    expect(newToken).not.toBe(node.token);
    await expectRotated(server, node, socket, newToken);
  });

  it('node.reissueToken by the owner closes the node’s live socket 4401; the new token works', async () => {
    await using server = await startTestServer(NO_REVALIDATION);
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const socket = await rawNodeSocket(server.wsUrl, node.token);
    expect(await beatOn(socket, node)).toMatchObject({ result: { type: 'data' } });

    const reissued = await mutate<{ nodeToken: string }>(
      server.url,
      'node.reissueToken',
      { nodeId: node.nodeId },
      { token: owner.token },
    );
    expect(reissued.status).toBe(200);
    await expectRotated(server, node, socket, reissued.data.nodeToken);
  });
});
