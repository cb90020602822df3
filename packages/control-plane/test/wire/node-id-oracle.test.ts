/**
 * Node ids of nodes the caller cannot see are never confirmed. A member's enrollment key or
 * pairing approval that names a node id is refused the same way whether the id is free or taken
 * by someone else's node (the key is not used, the request stays pending); reads answer an
 * invisible node exactly like a missing one. An admin sees every node, so an admin's key still
 * gets the useful `node.id_taken`; `TETHER_MEMBER_NODE_IDS=true` gives members that too.
 */
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, query, type CallResult } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, type ParticipantActor } from './actors.js';

const TAKEN = 'node-a';
const FREE = 'node-free';

async function keyOf(server: TestServer, token: string) {
  const key = await mutate<{ keyId: string; enrollmentKey: string }>(
    server.url,
    'enrollment.createKey',
    {},
    { token },
  );
  expect(key.status, key.raw).toBe(200);
  return key.data;
}

function enroll(server: TestServer, enrollmentKey: string, nodeId?: string) {
  return mutate<{ nodeId: string; ownerParticipantId: string }>(server.url, 'device.enroll', {
    enrollmentKey,
    name: 'edge box',
    nodeType: 'daemon',
    ...(nodeId === undefined ? {} : { nodeId }),
  });
}

/** What a caller can tell two answers apart by: status and the typed error. */
function answer(result: CallResult) {
  return { status: result.status, error: result.error?.data.tetherError ?? null };
}

async function keyUse(server: TestServer, actor: ParticipantActor, keyId: string) {
  const keys = await query<{ items: { keyId: string; state: string; useCount: number }[] }>(
    server.url,
    'enrollment.listKeys',
    {},
    { token: actor.token },
  );
  const key = keys.data.items.find((k) => k.keyId === keyId)!;
  return { state: key.state, useCount: key.useCount };
}

async function nodeCount(server: TestServer): Promise<number> {
  const { rows } = await server.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM nodes`);
  return rows[0]!.n;
}

describe('node id existence oracle', () => {
  it("a member's key naming an id gets node.id_not_allowed alike for an id taken by a node she cannot see and a free one; the key is not used", async () => {
    await using server = await startTestServer();
    const bob = await participant(server);
    await nodeOf(server, bob, TAKEN);
    const alice = await participant(server);
    const key = await keyOf(server, alice.token);
    const before = await nodeCount(server);

    const taken = await enroll(server, key.enrollmentKey, TAKEN);
    const free = await enroll(server, key.enrollmentKey, FREE);
    expect(taken.status, taken.raw).toBe(403);
    expect(errorCode(taken)).toBe('node.id_not_allowed');
    expect(answer(taken)).toEqual(answer(free));
    expect(await keyUse(server, alice, key.keyId)).toEqual({ state: 'active', useCount: 0 });
    expect(await nodeCount(server)).toBe(before);

    // Her own node's id is refused the same way (the rule is about who names ids, not which).
    const own = await keyOf(server, alice.token);
    const mine = await enroll(server, own.enrollmentKey);
    expect(mine.status, mine.raw).toBe(200);
    expect(answer(await enroll(server, key.enrollmentKey, mine.data.nodeId))).toEqual(answer(free));

    // Without a nodeId the same key enrolls, with a generated id she owns.
    const generated = await enroll(server, key.enrollmentKey);
    expect(generated.status, generated.raw).toBe(200);
    expect(generated.data.nodeId).toMatch(/^node-/);
    expect(generated.data.ownerParticipantId).toBe(alice.participantId);
  });

  it("an admin's key sees every node: a taken id → node.id_taken (409), a free one is granted", async () => {
    await using server = await startTestServer();
    const bob = await participant(server);
    await nodeOf(server, bob, TAKEN);
    const key = await keyOf(server, server.adminToken);
    const taken = await enroll(server, key.enrollmentKey, TAKEN);
    expect(taken.status).toBe(409);
    expect(errorCode(taken)).toBe('node.id_taken');
    const free = await enroll(server, key.enrollmentKey, FREE);
    expect(free.status, free.raw).toBe(200);
    expect(free.data.nodeId).toBe(FREE);
  });

  it('pairing: requests naming a taken or a free id are answered alike; a member approving either gets node.id_not_allowed and both stay pending', async () => {
    await using server = await startTestServer();
    const bob = await participant(server);
    await nodeOf(server, bob, TAKEN);
    const alice = await participant(server);
    const request = (nodeId: string) =>
      mutate<{ requestId: string }>(server.url, 'pairing.request', {
        name: 'edge box',
        nodeType: 'daemon',
        nodeId,
      });
    const askTaken = await request(TAKEN);
    const askFree = await request(FREE);
    expect(askTaken.status, askTaken.raw).toBe(200);
    expect(askFree.status, askFree.raw).toBe(200);

    const approve = (token: string, requestId: string) =>
      mutate(server.url, 'pairing.approve', { requestId }, { token });
    const taken = await approve(alice.token, askTaken.data.requestId);
    const free = await approve(alice.token, askFree.data.requestId);
    expect(taken.status, taken.raw).toBe(403);
    expect(errorCode(taken)).toBe('node.id_not_allowed');
    expect(answer(taken)).toEqual(answer(free));
    const listed = await query<{ items: { requestId: string; state: string }[] }>(
      server.url,
      'pairing.list',
      {},
      { token: alice.token },
    );
    const states = Object.fromEntries(listed.data.items.map((r) => [r.requestId, r.state]));
    expect(states[askTaken.data.requestId]).toBe('pending');
    expect(states[askFree.data.requestId]).toBe('pending');

    // An admin decides them: the taken id is named as taken, the free one is granted.
    const adminTaken = await approve(server.adminToken, askTaken.data.requestId);
    expect(errorCode(adminTaken)).toBe('node.id_taken');
    expect((await approve(server.adminToken, askFree.data.requestId)).status).toBe(200);
  });

  it('reads answer a node the caller cannot see exactly like a missing one', async () => {
    await using server = await startTestServer();
    const bob = await participant(server);
    await nodeOf(server, bob, TAKEN);
    const alice = await participant(server);
    const asAlice = { token: alice.token };
    const calls: [string, (nodeId: string) => Promise<CallResult>][] = [
      ['node.get', (nodeId) => query(server.url, 'node.get', { nodeId }, asAlice)],
      ['node.isOnline', (nodeId) => query(server.url, 'node.isOnline', { nodeId }, asAlice)],
      [
        'node.update',
        (nodeId) => mutate(server.url, 'node.update', { nodeId, name: 'mine now' }, asAlice),
      ],
      ['node.revoke', (nodeId) => mutate(server.url, 'node.revoke', { nodeId }, asAlice)],
      ['node.list search', (nodeId) => query(server.url, 'node.list', { search: nodeId }, asAlice)],
      [
        'fleet.list filter',
        (nodeId) => query(server.url, 'fleet.list', { filter: { nodeId } }, asAlice),
      ],
    ];
    for (const [name, call] of calls) {
      const invisible = await call(TAKEN);
      const missing = await call('node-missing');
      expect(answer(invisible), name).toEqual(answer(missing));
      if (invisible.status === 200) {
        expect((invisible.data as { items: unknown[] }).items, name).toEqual([]);
      } else {
        expect(errorCode(invisible), name).toBe('node.not_found');
      }
    }
    const { rows } = await server.db.query(`SELECT name, status FROM nodes WHERE node_id = $1`, [
      TAKEN,
    ]);
    expect(rows).toEqual([{ name: 'wire node', status: 'active' }]);
  });

  it('TETHER_MEMBER_NODE_IDS=true lets members name ids, and so tells them which are taken', async () => {
    await using server = await startTestServer({ env: { TETHER_MEMBER_NODE_IDS: 'true' } });
    const bob = await participant(server);
    await nodeOf(server, bob, TAKEN);
    const alice = await participant(server);
    const key = await keyOf(server, alice.token);
    const taken = await enroll(server, key.enrollmentKey, TAKEN);
    expect(taken.status).toBe(409);
    expect(errorCode(taken)).toBe('node.id_taken');
    const free = await enroll(server, key.enrollmentKey, FREE);
    expect(free.status, free.raw).toBe(200);
    expect(free.data.nodeId).toBe(FREE);
  });
});
