/**
 * Terminal conditions stop every retry, with a clear reason, and the server sees no further
 * connection attempts (counted server-side as WebSocket upgrade requests).
 */
import { WS_CLOSE } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import type { NodeCredentials, TetherNode } from '../src/index.js';
import {
  FAST_BEATS,
  countUpgrades,
  enrolled,
  events,
  metricTotal,
  nextEvent,
  seed,
  startTestServer,
  sessionNode,
  testNode,
  type TestServer,
} from './support.js';

/** A node that does not beat during a test: a revocation can reach it only as a socket close. */
function silentNode(credentials: NodeCredentials, sessionId: string) {
  return testNode(credentials, {
    sessionId,
    capabilities: { shell: {} },
    heartbeatIntervalMs: 3_600_000,
  });
}

/** Revokes the node behind the server's back (as another replica or an operator's SQL would). */
async function revokeInDatabase(server: TestServer, nodeId: string): Promise<void> {
  await server.db.query(
    `UPDATE nodes SET status = 'revoked', revoked_at = now() WHERE node_id = $1`,
    [nodeId],
  );
}

/**
 * While the witness beats six more times (many backoff windows), the stopped node makes no
 * attempt: the server's upgrade count stays where it was, and the node holds no socket or timer.
 */
async function expectNoRetry(
  node: TetherNode,
  witness: TetherNode,
  upgrades: { readonly count: number },
  expected: { upgrades: number; connectAttempts: number },
): Promise<void> {
  const before = upgrades.count;
  await events(witness, 'heartbeat', 6);
  expect(before).toBe(expected.upgrades);
  expect(upgrades.count).toBe(expected.upgrades);
  expect(node.snapshot()).toMatchObject({
    state: 'terminated',
    connectAttempts: expected.connectAttempts,
    openSockets: 0,
    nextAttemptAt: null,
  });
}

describe('terminal conditions stop every retry', () => {
  it('revoke a node: the server closes its socket with WS_CLOSE.CREDENTIAL_REVOKED; the agent stops with a clear message and never connects again', async () => {
    await using server = await startTestServer({ env: FAST_BEATS });
    const upgrades = countUpgrades(server.host.server);
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using node = silentNode(await enrolled(server.url, enrollmentKey), sessionId);
    await using witness = sessionNode(await enrolled(server.url, enrollmentKey), sessionId);
    await node.start();
    await witness.start();
    await node.waitFor('online');
    await witness.waitFor('online');
    expect(upgrades.count).toBe(2);

    const terminated = nextEvent(node, 'terminated');
    await admin.node.revoke.mutate({ nodeId: node.nodeId! });
    const reason = await terminated;
    expect(reason).toMatchObject({
      code: 'credential_revoked',
      closeCode: WS_CLOSE.CREDENTIAL_REVOKED,
    });
    expect(reason.message).toMatch(/revoked.*not reconnecting/);
    expect(node.state).toBe('terminated');

    await expectNoRetry(node, witness, upgrades, { upgrades: 2, connectAttempts: 1 });
    expect(server.host.connections.size).toBe(1);
    await expect(node.waitFor('online')).rejects.toThrow(/terminated.*revoked/);
  });

  it('a node revoked elsewhere (straight in the database) is closed by revalidation with WS_CLOSE.CREDENTIAL_REVOKED; the agent stops and does not retry', async () => {
    await using server = await startTestServer({
      env: { ...FAST_BEATS, TETHER_AUTH_CACHE_TTL_MS: '200' },
    });
    const upgrades = countUpgrades(server.host.server);
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using node = silentNode(await enrolled(server.url, enrollmentKey), sessionId);
    await using witness = sessionNode(await enrolled(server.url, enrollmentKey), sessionId);
    await node.start();
    await witness.start();
    await node.waitFor('online');
    await revokeInDatabase(server, node.nodeId!);
    await node.waitFor('terminated');
    expect(node.termination).toMatchObject({
      code: 'credential_revoked',
      closeCode: WS_CLOSE.CREDENTIAL_REVOKED,
    });
    await expectNoRetry(node, witness, upgrades, { upgrades: 2, connectAttempts: 1 });
  });

  it('a node revoked between two revalidations: its next heartbeat is refused with auth.unauthenticated and the agent stops there', async () => {
    await using server = await startTestServer({
      env: { ...FAST_BEATS, TETHER_AUTH_CACHE_TTL_MS: '600000' },
    });
    const upgrades = countUpgrades(server.host.server);
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using node = sessionNode(await enrolled(server.url, enrollmentKey), sessionId);
    await using witness = sessionNode(await enrolled(server.url, enrollmentKey), sessionId);
    await node.start();
    await witness.start();
    await node.waitFor('online');
    const refused = nextEvent(node, 'heartbeat_failed');
    await revokeInDatabase(server, node.nodeId!);
    expect((await refused).error.code).toBe('auth.unauthenticated');
    await node.waitFor('terminated');
    expect(node.termination).toMatchObject({ code: 'auth.unauthenticated' });
    await expectNoRetry(node, witness, upgrades, { upgrades: 2, connectAttempts: 1 });
  });

  it('auth.unauthenticated (a token the server never issued): one attempt, then stopped with that code', async () => {
    await using server = await startTestServer({ env: FAST_BEATS });
    const upgrades = countUpgrades(server.host.server);
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using witness = sessionNode(await enrolled(server.url, enrollmentKey), sessionId);
    await using node = sessionNode(
      {
        url: server.url,
        nodeId: 'ghost',
        token: 'tnd_this-token-was-never-issued-000000',
        ownerParticipantId: server.adminParticipantId,
      },
      sessionId,
    );
    await witness.start();
    await node.start();
    await expect(node.waitFor('online')).rejects.toThrow(/auth\.unauthenticated/);
    expect(node.termination).toMatchObject({ code: 'auth.unauthenticated' });
    await expectNoRetry(node, witness, upgrades, { upgrades: 2, connectAttempts: 1 });
  });

  it('revoked while disconnected: the next upgrade is refused with 401 before it becomes a socket; the agent stops, nothing is bound', async () => {
    // No cached answer: the revocation below bypasses this replica's revocation bus.
    await using server = await startTestServer({
      env: { ...FAST_BEATS, TETHER_AUTH_CACHE_TTL_MS: '1' },
    });
    const upgrades = countUpgrades(server.host.server);
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using witness = sessionNode(await enrolled(server.url, enrollmentKey), sessionId);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = sessionNode(credentials, sessionId);
    await witness.start();
    await node.start();
    await node.waitFor('online');
    // Revoked while its socket is gone (no close code can tell it): the resume's upgrade says so.
    const failed = nextEvent(node, 'connect_failed');
    await revokeInDatabase(server, credentials.nodeId);
    node.disconnect('test');
    expect((await failed).cause).toMatchObject({
      kind: 'call_failed',
      code: 'auth.unauthenticated',
    });
    await expect(node.waitFor('online')).rejects.toThrow(/terminated/);
    expect(node.termination).toMatchObject({ code: 'auth.unauthenticated' });
    expect(
      await metricTotal(server.url, 'tether_ws_handshakes_total', { result: 'refused_401' }),
    ).toBe(1);
    const { rows } = await server.db.query<{ connection_id: string | null }>(
      `SELECT connection_id FROM runtime_node_presence WHERE node_id = $1`,
      [credentials.nodeId],
    );
    expect(rows[0]?.connection_id ?? null).toBeNull();
    await expectNoRetry(node, witness, upgrades, { upgrades: 3, connectAttempts: 2 });
  });

  it('auth.principal_mismatch (another node id with this token): stopped after one attempt', async () => {
    await using server = await startTestServer();
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const real = await enrolled(server.url, enrollmentKey);
    await using node = sessionNode({ ...real, nodeId: 'someone-else' }, sessionId);
    await node.start();
    await expect(node.waitFor('online')).rejects.toThrow(/terminated/);
    expect(node.termination).toMatchObject({ code: 'auth.principal_mismatch' });
    expect(node.snapshot().connectAttempts).toBe(1);
  });

  it('runtimenode.attach_revoked (the session owner revoked this attachment): stopped at the next attach, no further attempts', async () => {
    await using server = await startTestServer({ env: FAST_BEATS });
    const upgrades = countUpgrades(server.host.server);
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using node = sessionNode(await enrolled(server.url, enrollmentKey), sessionId);
    await using witness = sessionNode(await enrolled(server.url, enrollmentKey), sessionId);
    await witness.start();
    await node.start();
    await node.waitFor('online');
    await admin.runtimenode.revoke.mutate({
      sessionId,
      nodeId: node.nodeId!,
      reason: 'decommissioned',
    });
    // Only the attachment is revoked, not the credential: the socket stays up. The next
    // connection's attach is refused for good.
    const terminated = nextEvent(node, 'terminated');
    node.disconnect('simulated network drop');
    const reason = await terminated;
    expect(reason).toMatchObject({ code: 'runtimenode.attach_revoked' });
    expect(reason.message).toMatch(/runtimenode\.attach_revoked/);
    await expectNoRetry(node, witness, upgrades, { upgrades: 3, connectAttempts: 2 });
  });
});
