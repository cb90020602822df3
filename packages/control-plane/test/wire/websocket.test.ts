import { CONTRACT_VERSION, parseEventEnvelopeVersion } from '@tether/contracts';
import { TRPCClientError } from '@trpc/client';
import { describe, expect, it } from 'vitest';
import { CLOSE_CREDENTIAL_REVOKED } from '../../src/server/connections.js';
import { mutate } from '../http.js';
import { startTestServer } from '../server.js';
import { nodeOf, participant, sessionOf, wsClient } from './actors.js';

function tetherCode(error: unknown): string | undefined {
  if (!(error instanceof TRPCClientError)) return undefined;
  const data = error.data as { tetherError?: { code: string } } | undefined;
  return data?.tetherError?.code;
}

const MAJOR = parseEventEnvelopeVersion(CONTRACT_VERSION).major;
/** A contract MAJOR above the server's, and a MINOR of its own MAJOR it does not know yet. */
const ABOVE = `${MAJOR + 1n}.0`;
const SAME_MAJOR = `${MAJOR}.99`;

describe('tRPC over WebSocket', () => {
  it('a node authenticates once with connectionParams and attaches, beats and detaches over one socket', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const session = await sessionOf(server, owner);
    const node = await nodeOf(server, owner);
    const ws = wsClient(server, { token: node.token, clientVersion: '1.0' });
    try {
      const attached = await ws.client.runtimenode.attach.mutate({
        sessionId: session,
        participantId: node.ownerParticipantId,
        nodeId: node.nodeId,
        clientVersion: '1.0',
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

  it('a client announcing a higher contract MAJOR gets version.ceiling_exceeded (WS and HTTP)', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const ws = wsClient(server, { token: node.token, clientVersion: ABOVE });
    try {
      const error = await ws.client.runtimenode.heartbeat
        .mutate({ nodeId: node.nodeId, healthState: 'online' })
        .catch((e: unknown) => e);
      expect(tetherCode(error)).toBe('version.ceiling_exceeded');
    } finally {
      await ws.close();
    }
    const http = await mutate(
      server.url,
      'runtimenode.heartbeat',
      { nodeId: node.nodeId, healthState: 'online' },
      {
        token: node.token,
        headers: { 'x-tether-client-version': ABOVE },
      },
    );
    expect(http.status).toBe(409);
    expect(http.error?.data.tetherError.code).toBe('version.ceiling_exceeded');
    const sameMajor = await mutate(
      server.url,
      'runtimenode.heartbeat',
      { nodeId: node.nodeId, healthState: 'online' },
      {
        token: node.token,
        headers: { 'x-tether-client-version': SAME_MAJOR },
      },
    );
    expect(sameMajor.status).toBe(200);
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
