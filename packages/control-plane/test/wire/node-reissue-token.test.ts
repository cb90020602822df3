/** `node.reissueToken` over real HTTP: the owner gives a node a new token; the old one ends. */
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, query } from '../http.js';
import { startTestServer } from '../server.js';
import { nodeOf, participant } from './actors.js';

describe('node.reissueToken', () => {
  it('returns a new token once; the old token stops working; strangers and revoked nodes are refused', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const stranger = await participant(server);
    const admin = await participant(server, 'admin');
    const node = await nodeOf(server, owner);
    const beat = (token: string) =>
      mutate(
        server.url,
        'runtimenode.heartbeat',
        { nodeId: node.nodeId, healthState: 'online' },
        { token },
      );
    expect((await beat(node.token)).status).toBe(200);

    const reissued = await mutate<{ nodeToken: string }>(
      server.url,
      'node.reissueToken',
      { nodeId: node.nodeId },
      { token: owner.token },
    );
    expect(reissued.status).toBe(200);
    expect(reissued.data.nodeToken).toMatch(/^tnd_/);
    expect(reissued.data.nodeToken).not.toBe(node.token);
    expect(errorCode(await beat(node.token))).toBe('auth.unauthenticated');
    expect((await beat(reissued.data.nodeToken)).status).toBe(200);

    // The feed says the token changed, and who did it.
    const events = await query<{ items: { type: string; data: { changed?: string[] } }[] }>(
      server.url,
      'fleet.list',
      { filter: { nodeId: node.nodeId, types: ['node.updated'] } },
      { token: owner.token },
    );
    expect(events.data.items.map((e) => e.data.changed)).toEqual([['token']]);

    // Someone who may not see the node is told it does not exist; an admin may reissue.
    expect(
      errorCode(
        await mutate(
          server.url,
          'node.reissueToken',
          { nodeId: node.nodeId },
          { token: stranger.token },
        ),
      ),
    ).toBe('node.not_found');
    const byAdmin = await mutate<{ nodeToken: string }>(
      server.url,
      'node.reissueToken',
      { nodeId: node.nodeId },
      { token: admin.token },
    );
    expect(byAdmin.status).toBe(200);
    expect(errorCode(await beat(reissued.data.nodeToken))).toBe('auth.unauthenticated');

    // A revoked identity gets no new token.
    expect(
      (await mutate(server.url, 'node.revoke', { nodeId: node.nodeId }, { token: owner.token }))
        .status,
    ).toBe(200);
    expect(
      errorCode(
        await mutate(
          server.url,
          'node.reissueToken',
          { nodeId: node.nodeId },
          { token: owner.token },
        ),
      ),
    ).toBe('node.not_found');
  });
});
