/** `node.*` over real HTTP (and one WebSocket) with real participant and node tokens. */
import type { Capabilities, NodeId, SessionId } from '@tether/contracts';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createParticipantWithToken } from '../../src/auth/participant-tokens.js';
import { generateToken, hashToken } from '../../src/auth/tokens.js';
import { registerNode } from '../../src/nodes/service.js';
import { CLOSE_CREDENTIAL_REVOKED } from '../../src/server/connections.js';
import type { AppRouter } from '../../src/trpc/root.js';
import { uniqueName } from '../fixtures.js';
import { errorCode, mutate, query } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';

// A long auth cache and revalidation period: a credential only stops working at once if the
// revocation bus reached the cache and the socket registry.
const LONG_CACHE = { env: { TETHER_AUTH_CACHE_TTL_MS: '600000' } };

interface Actor {
  participantId: string;
  token: string;
}

interface NodeActor {
  nodeId: NodeId;
  token: string;
}

async function member(server: TestServer, role: 'admin' | 'member' = 'member'): Promise<Actor> {
  const created = await createParticipantWithToken(server.db, { name: uniqueName('p'), role });
  return { participantId: created.participantId, token: created.token };
}

async function enrolledNode(
  server: TestServer,
  owner: Actor,
  capabilities: Capabilities = {},
): Promise<NodeActor> {
  const token = generateToken('tnd_');
  const node = await registerNode(server.db, {
    nodeId: uniqueName('node'),
    ownerParticipantId: owner.participantId as never,
    name: 'wire node',
    nodeType: 'daemon',
    capabilities,
    tokenHash: hashToken(token),
  });
  return { nodeId: node.nodeId, token };
}

async function sessionWith(server: TestServer, owner: Actor, members: Actor[]): Promise<SessionId> {
  const created = await mutate<{ sessionId: SessionId }>(
    server.url,
    'session.create',
    { name: uniqueName('s') },
    {
      token: owner.token,
    },
  );
  expect(created.status).toBe(200);
  for (const m of members) {
    const added = await mutate(
      server.url,
      'membership.add',
      { sessionId: created.data.sessionId, participantId: m.participantId, role: 'collaborator' },
      { token: owner.token },
    );
    expect(added.status).toBe(200);
  }
  return created.data.sessionId;
}

function beat(server: TestServer, node: NodeActor, token = node.token) {
  return mutate(
    server.url,
    'runtimenode.heartbeat',
    { nodeId: node.nodeId, healthState: 'online' },
    { token },
  );
}

async function attachOverHttp(
  server: TestServer,
  node: NodeActor,
  owner: Actor,
  sessionId: SessionId,
) {
  const attached = await mutate(
    server.url,
    'runtimenode.attach',
    {
      sessionId,
      participantId: owner.participantId,
      nodeId: node.nodeId,
      nodeVersion: '1.0',
      capabilities: { gpu: {} },
      healthState: 'online',
    },
    { token: node.token },
  );
  expect(attached.status).toBe(200);
}

async function nodeEvents(server: TestServer, nodeId: string, type: string): Promise<number> {
  const { rows } = await server.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM fleet_events WHERE node_id = $1 AND type = $2`,
    [nodeId, type],
  );
  return rows[0]!.n;
}

describe('node.get / node.list over HTTP', () => {
  it('visibility matrix: owner, co-member and admin read the node; a stranger gets node.not_found 404 and an empty list', async () => {
    await using server = await startTestServer();
    const owner = await member(server);
    const coMember = await member(server);
    const stranger = await member(server);
    const session = await sessionWith(server, owner, [coMember]);
    const node = await enrolledNode(server, owner);
    await attachOverHttp(server, node, owner, session);

    for (const who of [owner, coMember]) {
      const got = await query<{ nodeId: string; activeAttachment: { sessionId: string } }>(
        server.url,
        'node.get',
        { nodeId: node.nodeId },
        { token: who.token },
      );
      expect(got.status).toBe(200);
      expect(got.data.activeAttachment.sessionId).toBe(session);
      const listed = await query<{ items: { nodeId: string }[] }>(
        server.url,
        'node.list',
        {},
        { token: who.token },
      );
      expect(listed.data.items.map((n) => n.nodeId)).toEqual([node.nodeId]);
    }
    const asAdmin = await query(
      server.url,
      'node.get',
      { nodeId: node.nodeId },
      { token: server.adminToken },
    );
    expect(asAdmin.status).toBe(200);

    const hidden = await query(
      server.url,
      'node.get',
      { nodeId: node.nodeId },
      { token: stranger.token },
    );
    expect(hidden.status).toBe(404);
    expect(errorCode(hidden)).toBe('node.not_found');
    const strangersList = await query<{ items: unknown[] }>(server.url, 'node.list', undefined, {
      token: stranger.token,
    });
    expect(strangersList.status).toBe(200);
    expect(strangersList.data).toEqual({ items: [], nextCursor: null });

    const byNode = await query(
      server.url,
      'node.get',
      { nodeId: node.nodeId },
      { token: node.token },
    );
    expect(byNode.status).toBe(403);
    expect(errorCode(byNode)).toBe('auth.forbidden');
  });

  it('filters by label and capability over HTTP; a bad cursor → request.invalid 400', async () => {
    await using server = await startTestServer();
    const owner = await member(server);
    const gpu = await enrolledNode(server, owner, { gpu: {} });
    await enrolledNode(server, owner, { cpu: {} });
    const updated = await mutate(
      server.url,
      'node.update',
      { nodeId: gpu.nodeId, labels: { env: 'prod' } },
      { token: owner.token },
    );
    expect(updated.status).toBe(200);

    const byLabel = await query<{ items: { nodeId: string }[] }>(
      server.url,
      'node.list',
      { label: 'env=prod' },
      { token: owner.token },
    );
    expect(byLabel.data.items.map((n) => n.nodeId)).toEqual([gpu.nodeId]);
    const byCapability = await query<{ items: { nodeId: string }[] }>(
      server.url,
      'node.list',
      { capability: 'gpu' },
      {
        token: owner.token,
      },
    );
    expect(byCapability.data.items.map((n) => n.nodeId)).toEqual([gpu.nodeId]);

    const bad = await query(
      server.url,
      'node.list',
      { cursor: 'definitely-not-ours' },
      { token: owner.token },
    );
    expect(bad.status).toBe(400);
    expect(errorCode(bad)).toBe('request.invalid');
  });
});

describe('node.isOnline / node.findOnlineWithCapability over HTTP', () => {
  it('offline until the node beats with its own token, then online; found by capability only once online', async () => {
    await using server = await startTestServer();
    const owner = await member(server);
    const node = await enrolledNode(server, owner, { 'shell.exec': {} });

    const before = await query<{ online: boolean; healthState: string }>(
      server.url,
      'node.isOnline',
      { nodeId: node.nodeId },
      {
        token: owner.token,
      },
    );
    expect(before.status).toBe(200);
    expect(before.data).toMatchObject({
      nodeId: node.nodeId,
      online: false,
      healthState: 'offline',
      onlineSince: null,
    });
    const notYet = await query<{ items: unknown[] }>(
      server.url,
      'node.findOnlineWithCapability',
      { capability: 'shell.exec' },
      {
        token: owner.token,
      },
    );
    expect(notYet.data.items).toEqual([]);

    expect((await beat(server, node)).status).toBe(200);

    const after = await query<{ online: boolean; healthState: string; onlineSince: string | null }>(
      server.url,
      'node.isOnline',
      { nodeId: node.nodeId },
      { token: owner.token },
    );
    expect(after.data).toMatchObject({ online: true, healthState: 'online' });
    expect(after.data.onlineSince).not.toBeNull();
    const found = await query<{ items: { nodeId: string }[]; nextCursor: string | null }>(
      server.url,
      'node.findOnlineWithCapability',
      { capability: 'shell.exec' },
      { token: owner.token },
    );
    expect(found.data.items.map((n) => n.nodeId)).toEqual([node.nodeId]);
    expect(found.data.nextCursor).toBeNull();
  });
});

describe('node.update over HTTP', () => {
  it('owner updates and node.updated is written; a co-member gets auth.forbidden 403', async () => {
    await using server = await startTestServer();
    const owner = await member(server);
    const coMember = await member(server);
    const session = await sessionWith(server, owner, [coMember]);
    const node = await enrolledNode(server, owner);
    await attachOverHttp(server, node, owner, session);

    const updated = await mutate<{ name: string; location: string | null }>(
      server.url,
      'node.update',
      { nodeId: node.nodeId, name: 'Kitchen Mac', location: 'Berlin' },
      { token: owner.token },
    );
    expect(updated.status).toBe(200);
    expect(updated.data).toMatchObject({ name: 'Kitchen Mac', location: 'Berlin' });
    expect(await nodeEvents(server, node.nodeId, 'node.updated')).toBe(1);

    const denied = await mutate(
      server.url,
      'node.update',
      { nodeId: node.nodeId, name: 'mine now' },
      { token: coMember.token },
    );
    expect(denied.status).toBe(403);
    expect(errorCode(denied)).toBe('auth.forbidden');
  });
});

describe('node.revoke over HTTP', () => {
  it('the node token gets 401 auth.unauthenticated at once; attachments revoked, presence offline, node.revoked once', async () => {
    await using server = await startTestServer(LONG_CACHE);
    const owner = await member(server);
    const session = await sessionWith(server, owner, []);
    const node = await enrolledNode(server, owner);
    await attachOverHttp(server, node, owner, session);
    expect((await beat(server, node)).status).toBe(200); // the credential is now in the auth cache

    const revoked = await mutate(
      server.url,
      'node.revoke',
      { nodeId: node.nodeId },
      { token: owner.token },
    );
    expect(revoked.status).toBe(200);
    expect(revoked.data).toBeNull();

    const rejected = await beat(server, node);
    expect(rejected.status).toBe(401);
    expect(errorCode(rejected)).toBe('auth.unauthenticated');

    const view = await query<{
      status: string;
      presence: { healthState: string };
      activeAttachment: unknown;
    }>(server.url, 'node.get', { nodeId: node.nodeId }, { token: owner.token });
    expect(view.data).toMatchObject({
      status: 'revoked',
      presence: { healthState: 'offline' },
      activeAttachment: null,
    });
    const roster = await query<{ nodes: { nodeId: string; state: string }[] }>(
      server.url,
      'runtimenode.roster',
      { sessionId: session },
      {
        token: owner.token,
      },
    );
    expect(roster.data.nodes.map((n) => [n.nodeId, n.state])).toEqual([[node.nodeId, 'revoked']]);
    expect(await nodeEvents(server, node.nodeId, 'node.revoked')).toBe(1);

    const again = await mutate(
      server.url,
      'node.revoke',
      { nodeId: node.nodeId },
      { token: owner.token },
    );
    expect(again.status).toBe(200);
    expect(again.data).toBeNull();
    expect(await nodeEvents(server, node.nodeId, 'node.revoked')).toBe(1);
  });

  it('a non-owner session member cannot revoke: auth.forbidden 403; a stranger: node.not_found 404', async () => {
    await using server = await startTestServer();
    const owner = await member(server);
    const coMember = await member(server);
    const stranger = await member(server);
    const session = await sessionWith(server, owner, [coMember]);
    const node = await enrolledNode(server, owner);
    await attachOverHttp(server, node, owner, session);

    const denied = await mutate(
      server.url,
      'node.revoke',
      { nodeId: node.nodeId },
      { token: coMember.token },
    );
    expect(denied.status).toBe(403);
    expect(errorCode(denied)).toBe('auth.forbidden');
    const hidden = await mutate(
      server.url,
      'node.revoke',
      { nodeId: node.nodeId },
      { token: stranger.token },
    );
    expect(hidden.status).toBe(404);
    expect(errorCode(hidden)).toBe('node.not_found');
    expect((await beat(server, node)).status).toBe(200);
  });

  it("closes the node's live WebSocket with the revoked close code", async () => {
    await using server = await startTestServer(LONG_CACHE);
    const owner = await member(server);
    const node = await enrolledNode(server, owner);
    let closedWith: (code: number | undefined) => void = () => undefined;
    const closed = new Promise<number | undefined>((resolve) => (closedWith = resolve));
    const ws = createWSClient({
      url: server.wsUrl,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      connectionParams: { token: node.token },
      retryDelayMs: () => 600_000,
      onClose: (cause) => closedWith(cause?.code),
    });
    try {
      const client = createTRPCClient<AppRouter>({
        links: [wsLink({ client: ws, transformer: superjson })],
      });
      await client.runtimenode.heartbeat.mutate({ nodeId: node.nodeId, healthState: 'online' });
      const revoked = await mutate(
        server.url,
        'node.revoke',
        { nodeId: node.nodeId },
        { token: owner.token },
      );
      expect(revoked.status).toBe(200);
      expect(await closed).toBe(CLOSE_CREDENTIAL_REVOKED);
    } finally {
      await ws.close();
    }
  });
});

describe('node.rotateToken over HTTP', () => {
  it('the new token works and the old one gets 401 at once; participants cannot call it', async () => {
    await using server = await startTestServer(LONG_CACHE);
    const owner = await member(server);
    const node = await enrolledNode(server, owner);
    expect((await beat(server, node)).status).toBe(200); // the old credential is cached

    const rotated = await mutate<{ nodeToken: string }>(
      server.url,
      'node.rotateToken',
      {},
      { token: node.token },
    );
    expect(rotated.status).toBe(200);
    expect(rotated.data.nodeToken).toMatch(/^tnd_/);
    expect(rotated.data.nodeToken).not.toBe(node.token);

    const old = await beat(server, node);
    expect(old.status).toBe(401);
    expect(errorCode(old)).toBe('auth.unauthenticated');
    expect((await beat(server, node, rotated.data.nodeToken)).status).toBe(200);
    const rotateWithOld = await mutate(server.url, 'node.rotateToken', {}, { token: node.token });
    expect(rotateWithOld.status).toBe(401);

    const byParticipant = await mutate(server.url, 'node.rotateToken', {}, { token: owner.token });
    expect(byParticipant.status).toBe(403);
    expect(errorCode(byParticipant)).toBe('auth.forbidden');
  });
});
