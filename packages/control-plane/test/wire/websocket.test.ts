import { CONTRACT_VERSION, SUPPORTED_CONTRACT_MAJORS } from '@tether/contracts';
import { TRPCClientError } from '@trpc/client';
import { describe, expect, it } from 'vitest';
import { CLOSE_CREDENTIAL_REVOKED } from '../../src/server/connections.js';
import { errorCode, mutate, query } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, sessionOf, wsClient, type NodeActor } from './actors.js';

function tetherCode(error: unknown): string | undefined {
  if (!(error instanceof TRPCClientError)) return undefined;
  const data = error.data as { tetherError?: { code: string } } | undefined;
  return data?.tetherError?.code;
}

describe('tRPC over WebSocket', () => {
  it('a node authenticates once with connectionParams and attaches, beats and detaches over one socket', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const session = await sessionOf(server, owner);
    const node = await nodeOf(server, owner);
    const ws = wsClient(server, { token: node.token, clientVersion: CONTRACT_VERSION });
    try {
      const attached = await ws.client.runtimenode.attach.mutate({
        sessionId: session,
        participantId: node.ownerParticipantId,
        nodeId: node.nodeId,
        nodeVersion: '1.0',
        capabilities: { shell: {} },
        healthState: 'online',
      });
      expect(attached).toMatchObject({ state: 'registering', readOnly: false });
      await expect(
        ws.client.runtimenode.heartbeat.mutate({ nodeId: node.nodeId, healthState: 'online' }),
      ).resolves.toBeNull();
      const info = await ws.client.system.info.query();
      expect(info.contractVersion).toBe(CONTRACT_VERSION);
      await expect(
        ws.client.runtimenode.detach.mutate({ nodeId: node.nodeId }),
      ).resolves.toBeNull();
    } finally {
      await ws.close();
    }
  });

  it('no or bad credentials: calls fail with auth.unauthenticated, public calls still work', async () => {
    await using server = await startTestServer();
    const ws = wsClient(server, { token: 'tnd_not-a-real-token-at-all-000000000000' });
    try {
      const error = await ws.client.runtimenode.heartbeat
        .mutate({ nodeId: 'n1', healthState: 'online' })
        .catch((e: unknown) => e);
      expect(tetherCode(error)).toBe('auth.unauthenticated');
      expect((await ws.client.system.info.query()).contractVersion).toBe(CONTRACT_VERSION);
    } finally {
      await ws.close();
    }
  });

  it('a participant token revoked on this replica closes its open socket with the revoked close code', async () => {
    await using server = await startTestServer();
    const admin = await participant(server, 'admin');
    const issued = await mutate<{ tokenId: string; token: string }>(
      server.url,
      'token.create',
      { name: 'dash' },
      {
        token: admin.token,
      },
    );
    const ws = wsClient(server, { token: issued.data.token });
    await ws.client.session.list.query({});
    const revoked = await mutate(
      server.url,
      'token.revoke',
      { tokenId: issued.data.tokenId },
      { token: admin.token },
    );
    expect(revoked.status).toBe(200);
    expect(await ws.closed).toBe(CLOSE_CREDENTIAL_REVOKED);
    await ws.close();
  });

  it('a node token revoked elsewhere (straight in the database) is caught by revalidation and its socket closed', async () => {
    await using server = await startTestServer({ env: { TETHER_AUTH_CACHE_TTL_MS: '200' } });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const ws = wsClient(server, { token: node.token });
    await ws.client.runtimenode.heartbeat.mutate({ nodeId: node.nodeId, healthState: 'online' });
    // Another replica revoking the node looks like this from here: only the row changes.
    await server.db.query(
      `UPDATE nodes SET status = 'revoked', revoked_at = now() WHERE node_id = $1`,
      [node.nodeId],
    );
    expect(await ws.closed).toBe(CLOSE_CREDENTIAL_REVOKED);
    await ws.close();
    const after = await mutate(
      server.url,
      'runtimenode.heartbeat',
      { nodeId: node.nodeId, healthState: 'online' },
      {
        token: node.token,
      },
    );
    expect(after.status).toBe(401);
  });

  describe('the contract MAJORs the server serves', () => {
    const { min, max } = SUPPORTED_CONTRACT_MAJORS;
    const beat = (server: TestServer, node: NodeActor, clientVersion: string) =>
      mutate(
        server.url,
        'runtimenode.heartbeat',
        { nodeId: node.nodeId, healthState: 'online' },
        { token: node.token, headers: { 'x-tether-client-version': clientVersion } },
      );
    const wsBeat = async (server: TestServer, node: NodeActor, clientVersion: string) => {
      const ws = wsClient(server, { token: node.token, clientVersion });
      try {
        return await ws.client.runtimenode.heartbeat
          .mutate({ nodeId: node.nodeId, healthState: 'online' })
          .then(() => 'ok')
          .catch((e: unknown) => e);
      } finally {
        await ws.close();
      }
    };

    it('system.info states them', async () => {
      await using server = await startTestServer();
      const info = await query<{ supportedContractMajors: unknown; contractVersion: string }>(
        server.url,
        'system.info',
      );
      expect(info.data.supportedContractMajors).toEqual({ min, max });
      expect(info.data.contractVersion).toBe(CONTRACT_VERSION);
    });

    it('a client announcing a MAJOR below them gets version.unsupported naming the range (HTTP header and WS connectionParams)', async () => {
      expect(min).toBeGreaterThan(0); // there is a MAJOR below to announce
      await using server = await startTestServer();
      const node = await nodeOf(server, await participant(server));
      const old = `${min - 1}.9`;
      const http = await beat(server, node, old);
      expect(http.status).toBe(409);
      expect(errorCode(http)).toBe('version.unsupported');
      expect(http.error?.data.tetherError.details).toEqual({
        serverContractVersion: CONTRACT_VERSION,
        supportedContractMajors: { min, max },
        clientContractVersion: old,
      });
      expect(http.error?.data.tetherError.message).toContain(`contract MAJOR`);
      const ws = await wsBeat(server, node, old);
      expect(tetherCode(ws)).toBe('version.unsupported');
      // The server keeps serving supported clients.
      expect((await beat(server, node, `${min}.0`)).status).toBe(200);
      expect(await wsBeat(server, node, CONTRACT_VERSION)).toBe('ok');
    });

    it('a client announcing a MAJOR above them gets version.ceiling_exceeded (WS and HTTP); any MINOR of a served MAJOR is fine', async () => {
      await using server = await startTestServer();
      const node = await nodeOf(server, await participant(server));
      const above = `${max + 1}.0`;
      expect(tetherCode(await wsBeat(server, node, above))).toBe('version.ceiling_exceeded');
      const http = await beat(server, node, above);
      expect(http.status).toBe(409);
      expect(errorCode(http)).toBe('version.ceiling_exceeded');
      expect(http.error?.data.tetherError.details).toMatchObject({
        supportedContractMajors: { min, max },
      });
      expect((await beat(server, node, `${max}.99`)).status).toBe(200);
    });
  });

  it('SIGTERM-style stop sends the reconnect notification and readiness fails while draining', async () => {
    const server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const ws = wsClient(server, { token: node.token });
    await ws.client.runtimenode.heartbeat.mutate({ nodeId: node.nodeId, healthState: 'online' });
    server.host.setDraining();
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    await server.stop();
    expect(await ws.closed).toBeTypeOf('number');
    await ws.close();
  });
});
