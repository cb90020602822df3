/** `node.counts` over real HTTP: presence totals with node.list's visibility and filters. */
import { describe, expect, it } from 'vitest';
import { uniqueName } from '../fixtures.js';
import { errorCode, mutate, query } from '../http.js';
import { startTestServer } from '../server.js';
import { nodeOf, participant } from './actors.js';

interface Counts {
  online: number;
  degraded: number;
  offline: number;
  revoked: number;
  total: number;
}

describe('node.counts', () => {
  it('counts the nodes the caller may see by presence, revoked apart, with the list filters', async () => {
    await using server = await startTestServer();
    const alice = await participant(server);
    const bob = await participant(server);
    const admin = await participant(server, 'admin');
    const prefix = uniqueName('counts');
    const [up, slow, idle, gone] = await Promise.all([
      nodeOf(server, alice, `${prefix}-up`),
      nodeOf(server, alice, `${prefix}-slow`),
      nodeOf(server, alice, `${prefix}-idle`),
      nodeOf(server, alice, `${prefix}-gone`),
    ]);
    await nodeOf(server, bob, `${prefix}-bobs`);
    const beat = (nodeId: string, token: string, healthState: 'online' | 'degraded') =>
      mutate(server.url, 'runtimenode.heartbeat', { nodeId, healthState }, { token });
    expect((await beat(up.nodeId, up.token, 'online')).status).toBe(200);
    expect((await beat(slow.nodeId, slow.token, 'degraded')).status).toBe(200);
    expect(
      (await mutate(server.url, 'node.revoke', { nodeId: gone.nodeId }, { token: alice.token }))
        .status,
    ).toBe(200);
    void idle;

    const counts = async (token: string, input?: object) => {
      const res = await query<Counts>(server.url, 'node.counts', input, { token });
      expect(res.status).toBe(200);
      return res.data;
    };
    // Alice sees her four nodes, not Bob's.
    expect(await counts(alice.token, { search: prefix })).toEqual({
      online: 1,
      degraded: 1,
      offline: 1,
      revoked: 1,
      total: 4,
    });
    // Bob sees only his own (never beat: offline).
    expect(await counts(bob.token, { search: prefix })).toEqual({
      online: 0,
      degraded: 0,
      offline: 1,
      revoked: 0,
      total: 1,
    });
    // An admin sees all five.
    expect((await counts(admin.token, { search: prefix })).total).toBe(5);
    // Filters narrow as node.list's do.
    expect(await counts(alice.token, { search: prefix, status: 'active' })).toMatchObject({
      revoked: 0,
      total: 3,
    });
    expect((await counts(alice.token, { search: `${prefix}-up` })).online).toBe(1);
    expect((await counts(alice.token, { search: prefix, nodeType: 'nothing-like-it' })).total).toBe(
      0,
    );
    // Without a participant token: refused; a presence filter is not an input here.
    expect(errorCode(await query(server.url, 'node.counts', { search: prefix }))).toBe(
      'auth.unauthenticated',
    );
    expect(
      errorCode(
        await query(server.url, 'node.counts', { healthState: 'online' }, { token: alice.token }),
      ),
    ).toBe('request.invalid');
  });
});
