/**
 * Enrollment keys and `device.enroll` over plain HTTP against a real server (operator
 * first enrollment). Expiry is simulated by moving `expires_at` into the past, never by waiting.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, query, type CallResult } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';

interface CreatedKey {
  keyId: string;
  enrollmentKey: string;
  expiresAt: string;
}
interface KeyView {
  keyId: string;
  reusable: boolean;
  labels: Record<string, string>;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  useCount: number;
  lastUsedAt: string | null;
  state: 'active' | 'spent' | 'expired' | 'revoked';
}
interface Enrolled {
  nodeId: string;
  nodeToken: string;
  ownerParticipantId: string;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

async function makeMember(
  server: TestServer,
  name = 'member',
): Promise<{ participantId: string; token: string }> {
  const created = await mutate<{ participantId: string; token: string }>(
    server.url,
    'participant.create',
    { name, role: 'member' },
    { token: server.adminToken },
  );
  expect(created.status).toBe(200);
  return created.data;
}

async function createKey(
  server: TestServer,
  token: string,
  input?: Record<string, unknown>,
): Promise<CreatedKey> {
  const created = await mutate<CreatedKey>(server.url, 'enrollment.createKey', input, { token });
  expect(created.status, created.raw).toBe(200);
  return created.data;
}

async function listKeys(server: TestServer, token: string): Promise<KeyView[]> {
  const listed = await query<{ items: KeyView[] }>(server.url, 'enrollment.listKeys', undefined, {
    token,
  });
  expect(listed.status, listed.raw).toBe(200);
  return listed.data.items;
}

function enroll(
  server: TestServer,
  enrollmentKey: string,
  extra: Record<string, unknown> = {},
): Promise<CallResult<Enrolled>> {
  return mutate<Enrolled>(server.url, 'device.enroll', {
    enrollmentKey,
    name: 'edge box',
    nodeType: 'daemon',
    ...extra,
  });
}

function heartbeat(server: TestServer, enrolled: Enrolled): Promise<CallResult> {
  return mutate(
    server.url,
    'runtimenode.heartbeat',
    { nodeId: enrolled.nodeId, healthState: 'online' },
    { token: enrolled.nodeToken },
  );
}

async function keyRow(server: TestServer, keyId: string) {
  const { rows } = await server.db.query<{ use_count: number; last_used_at: Date | null }>(
    `SELECT use_count, last_used_at FROM enrollment_keys WHERE id = $1`,
    [keyId],
  );
  return rows[0]!;
}

async function expireKey(server: TestServer, keyId: string): Promise<void> {
  await server.db.query(
    `UPDATE enrollment_keys SET expires_at = now() - interval '1 second' WHERE id = $1`,
    [keyId],
  );
}

describe('enrollment keys', () => {
  it('createKey returns a single-use tek_ key valid for 24h by default, stored only as its SHA-256', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken);
    expect(key.enrollmentKey).toMatch(/^tek_[A-Za-z0-9_-]{43}$/);
    const { rows } = await server.db.query<{
      key_hash: Buffer;
      created_by: string;
      reusable: boolean;
      ttl_seconds: number;
      expires_at: Date;
    }>(
      `SELECT key_hash, created_by, reusable, extract(epoch FROM expires_at - created_at)::int AS ttl_seconds, expires_at
         FROM enrollment_keys WHERE id = $1`,
      [key.keyId],
    );
    const row = rows[0]!;
    expect(row.key_hash.equals(sha256(key.enrollmentKey))).toBe(true);
    expect(row.created_by).toBe(server.adminParticipantId);
    expect(row.reusable).toBe(false);
    expect(row.ttl_seconds).toBe(24 * 3600);
    expect(new Date(key.expiresAt).getTime()).toBe(row.expires_at.getTime());
    const { rows: plaintext } = await server.db.query(
      `SELECT 1 FROM enrollment_keys k WHERE row_to_json(k)::text LIKE '%' || $1 || '%'`,
      [key.enrollmentKey.slice(4)],
    );
    expect(plaintext).toHaveLength(0);
  });

  it('createKey honours reusable, expiresInSeconds and labels; listKeys reports them', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken, {
      reusable: true,
      expiresInSeconds: 3600,
      labels: { site: 'lab-3' },
    });
    const { rows } = await server.db.query<{ ttl_seconds: number }>(
      `SELECT extract(epoch FROM expires_at - created_at)::int AS ttl_seconds FROM enrollment_keys WHERE id = $1`,
      [key.keyId],
    );
    expect(rows[0]!.ttl_seconds).toBe(3600);
    const [view] = await listKeys(server, server.adminToken);
    expect(view).toMatchObject({
      keyId: key.keyId,
      reusable: true,
      labels: { site: 'lab-3' },
      expiresAt: key.expiresAt,
      revokedAt: null,
      useCount: 0,
      lastUsedAt: null,
      state: 'active',
    });
    expect(JSON.stringify(view)).not.toContain(key.enrollmentKey);
  });

  it('createKey needs a participant token: anonymous → auth.unauthenticated (401)', async () => {
    await using server = await startTestServer();
    const anonymous = await mutate(server.url, 'enrollment.createKey', {});
    expect(anonymous.status).toBe(401);
    expect(errorCode(anonymous)).toBe('auth.unauthenticated');
  });

  it("listKeys shows a member only their own keys, newest first; an admin sees everyone's", async () => {
    await using server = await startTestServer();
    const alice = await makeMember(server, 'alice');
    const bob = await makeMember(server, 'bob');
    const a1 = await createKey(server, alice.token);
    const a2 = await createKey(server, alice.token);
    const b1 = await createKey(server, bob.token);
    const adminKey = await createKey(server, server.adminToken);

    expect((await listKeys(server, alice.token)).map((k) => k.keyId)).toEqual([a2.keyId, a1.keyId]);
    expect((await listKeys(server, bob.token)).map((k) => k.keyId)).toEqual([b1.keyId]);
    expect((await listKeys(server, server.adminToken)).map((k) => k.keyId).sort()).toEqual(
      [a1.keyId, a2.keyId, b1.keyId, adminKey.keyId].sort(),
    );
  });

  it('listKeys derives state: active, spent (used single-use), expired, revoked', async () => {
    await using server = await startTestServer();
    const active = await createKey(server, server.adminToken);
    const spent = await createKey(server, server.adminToken);
    const expired = await createKey(server, server.adminToken);
    const revoked = await createKey(server, server.adminToken);
    const usedReusable = await createKey(server, server.adminToken, { reusable: true });
    expect((await enroll(server, spent.enrollmentKey)).status).toBe(200);
    expect((await enroll(server, usedReusable.enrollmentKey)).status).toBe(200);
    await expireKey(server, expired.keyId);
    expect(
      (
        await mutate(
          server.url,
          'enrollment.revokeKey',
          { keyId: revoked.keyId },
          { token: server.adminToken },
        )
      ).status,
    ).toBe(200);

    const states = Object.fromEntries(
      (await listKeys(server, server.adminToken)).map((k) => [k.keyId, k]),
    );
    expect(states[active.keyId]!.state).toBe('active');
    expect(states[spent.keyId]!).toMatchObject({ state: 'spent', useCount: 1 });
    expect(states[spent.keyId]!.lastUsedAt).not.toBeNull();
    expect(states[expired.keyId]!.state).toBe('expired');
    expect(states[revoked.keyId]!.state).toBe('revoked');
    expect(states[revoked.keyId]!.revokedAt).not.toBeNull();
    expect(states[usedReusable.keyId]!).toMatchObject({ state: 'active', useCount: 1 });
  });

  it('revokeKey: the creator or an admin may revoke; another member (or an unknown id) → enrollment.key_not_found (404)', async () => {
    await using server = await startTestServer();
    const alice = await makeMember(server, 'alice');
    const bob = await makeMember(server, 'bob');
    const own = await createKey(server, alice.token);
    const forAdmin = await createKey(server, alice.token);

    const byStranger = await mutate(
      server.url,
      'enrollment.revokeKey',
      { keyId: own.keyId },
      { token: bob.token },
    );
    expect(byStranger.status).toBe(404);
    expect(errorCode(byStranger)).toBe('enrollment.key_not_found');
    expect((await listKeys(server, alice.token)).find((k) => k.keyId === own.keyId)!.state).toBe(
      'active',
    );

    const byCreator = await mutate(
      server.url,
      'enrollment.revokeKey',
      { keyId: own.keyId },
      { token: alice.token },
    );
    expect(byCreator.status).toBe(200);
    expect(byCreator.data).toBeNull();
    const byAdmin = await mutate(
      server.url,
      'enrollment.revokeKey',
      { keyId: forAdmin.keyId },
      { token: server.adminToken },
    );
    expect(byAdmin.status).toBe(200);
    expect((await listKeys(server, alice.token)).map((k) => k.state)).toEqual([
      'revoked',
      'revoked',
    ]);

    const unknown = await mutate(
      server.url,
      'enrollment.revokeKey',
      { keyId: '00000000-0000-4000-8000-000000000000' },
      { token: server.adminToken },
    );
    expect(unknown.status).toBe(404);
    expect(errorCode(unknown)).toBe('enrollment.key_not_found');
  });
});

describe('device.enroll', () => {
  it('happy path: the node is owned by the key creator, listed offline, its token works once shown', async () => {
    await using server = await startTestServer();
    const alice = await makeMember(server, 'alice');
    const key = await createKey(server, alice.token);
    const enrolled = await enroll(server, key.enrollmentKey, {
      platform: 'linux-arm64',
      location: 'rack 4',
      capabilities: { gpu: { description: 'CUDA device' } },
      nodeVersion: '1.0',
    });
    expect(enrolled.status, enrolled.raw).toBe(200);
    expect(enrolled.data.ownerParticipantId).toBe(alice.participantId);
    expect(enrolled.data.nodeId).toMatch(/^node-[0-9a-f-]{36}$/);
    expect(enrolled.data.nodeToken).toMatch(/^tnd_[A-Za-z0-9_-]{43}$/);

    const { rows: nodes } = await server.db.query<{
      owner_participant_id: string;
      token_hash: Buffer;
      platform: string;
      location: string;
      node_version: string;
      capabilities: unknown;
      status: string;
    }>(`SELECT * FROM nodes WHERE node_id = $1`, [enrolled.data.nodeId]);
    expect(nodes).toHaveLength(1);
    expect(nodes[0]!).toMatchObject({
      owner_participant_id: alice.participantId,
      platform: 'linux-arm64',
      location: 'rack 4',
      node_version: '1.0',
      capabilities: { gpu: { description: 'CUDA device' } },
      status: 'active',
    });
    expect(nodes[0]!.token_hash.equals(sha256(enrolled.data.nodeToken))).toBe(true);
    const { rows: presence } = await server.db.query<{
      health_state: string;
      last_heartbeat_at: Date | null;
    }>(`SELECT health_state, last_heartbeat_at FROM runtime_node_presence WHERE node_id = $1`, [
      enrolled.data.nodeId,
    ]);
    expect(presence).toEqual([{ health_state: 'offline', last_heartbeat_at: null }]);
    const { rows: events } = await server.db.query<{
      type: string;
      payload: Record<string, unknown>;
    }>(`SELECT type, payload FROM fleet_events WHERE node_id = $1`, [enrolled.data.nodeId]);
    expect(events).toEqual([
      {
        type: 'node.enrolled',
        payload: expect.objectContaining({
          via: 'enrollment_key',
          keyId: key.keyId,
          ownerParticipantId: alice.participantId,
        }) as unknown,
      },
    ]);
    expect((await keyRow(server, key.keyId)).use_count).toBe(1);

    const beat = await heartbeat(server, enrolled.data);
    expect(beat.status, beat.raw).toBe(200);
    expect(JSON.parse(beat.raw)).toEqual({ result: { data: { json: null } } });
  });

  it('a node may choose its own nodeId', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken);
    const enrolled = await enroll(server, key.enrollmentKey, { nodeId: 'edge-01.lab:a' });
    expect(enrolled.status, enrolled.raw).toBe(200);
    expect(enrolled.data.nodeId).toBe('edge-01.lab:a');
    expect((await heartbeat(server, enrolled.data)).status).toBe(200);
  });

  it('a single-use key enrolls once; the second use → enrollment.key_spent (403)', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken);
    expect((await enroll(server, key.enrollmentKey)).status).toBe(200);
    const again = await enroll(server, key.enrollmentKey);
    expect(again.status).toBe(403);
    expect(errorCode(again)).toBe('enrollment.key_spent');
    expect((await keyRow(server, key.keyId)).use_count).toBe(1);
  });

  it('concurrent enrolls with one single-use key yield exactly one node; the rest → enrollment.key_spent', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken);
    const attempts = 8;
    const results = await Promise.all(
      Array.from({ length: attempts }, (_, i) =>
        enroll(server, key.enrollmentKey, { nodeId: `racer-${i}` }),
      ),
    );
    const won = results.filter((r) => r.status === 200);
    const lost = results.filter((r) => r.status !== 200);
    expect(won).toHaveLength(1);
    expect(lost.map(errorCode)).toEqual(Array(attempts - 1).fill('enrollment.key_spent'));
    const { rows } = await server.db.query<{ node_id: string }>(
      `SELECT node_id FROM nodes WHERE node_id LIKE 'racer-%'`,
    );
    expect(rows.map((r) => r.node_id)).toEqual([won[0]!.data.nodeId]);
    const { rows: presence } = await server.db.query(
      `SELECT 1 FROM runtime_node_presence WHERE node_id LIKE 'racer-%'`,
    );
    expect(presence).toHaveLength(1);
    expect((await keyRow(server, key.keyId)).use_count).toBe(1);
  });

  it('an expired key → enrollment.key_expired (403), and nothing is created', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken, { reusable: true });
    await expireKey(server, key.keyId);
    const result = await enroll(server, key.enrollmentKey, { nodeId: 'too-late' });
    expect(result.status).toBe(403);
    expect(errorCode(result)).toBe('enrollment.key_expired');
    expect(
      (await server.db.query(`SELECT 1 FROM nodes WHERE node_id = 'too-late'`)).rows,
    ).toHaveLength(0);
  });

  it('a revoked key → enrollment.key_revoked (403)', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken, { reusable: true });
    expect((await enroll(server, key.enrollmentKey)).status).toBe(200);
    await mutate(
      server.url,
      'enrollment.revokeKey',
      { keyId: key.keyId },
      { token: server.adminToken },
    );
    const result = await enroll(server, key.enrollmentKey);
    expect(result.status).toBe(403);
    expect(errorCode(result)).toBe('enrollment.key_revoked');
    expect((await keyRow(server, key.keyId)).use_count).toBe(1);
  });

  it("a disabled creator's key counts as revoked: enrollment.key_revoked (403)", async () => {
    await using server = await startTestServer();
    const alice = await makeMember(server, 'alice');
    const key = await createKey(server, alice.token);
    await server.db.query(`UPDATE participants SET disabled_at = now() WHERE id = $1`, [
      alice.participantId,
    ]);
    const result = await enroll(server, key.enrollmentKey);
    expect(result.status).toBe(403);
    expect(errorCode(result)).toBe('enrollment.key_revoked');
    const [view] = await listKeys(server, server.adminToken);
    expect(view!.state).toBe('revoked');
  });

  it('an unknown key → enrollment.key_invalid (401)', async () => {
    await using server = await startTestServer();
    await createKey(server, server.adminToken);
    const result = await enroll(server, `tek_${'A'.repeat(43)}`);
    expect(result.status).toBe(401);
    expect(errorCode(result)).toBe('enrollment.key_invalid');
  });

  it('a taken nodeId → node.id_taken (409) and the single-use key is not consumed', async () => {
    await using server = await startTestServer();
    const first = await createKey(server, server.adminToken);
    expect((await enroll(server, first.enrollmentKey, { nodeId: 'edge-01' })).status).toBe(200);

    const key = await createKey(server, server.adminToken);
    const clash = await enroll(server, key.enrollmentKey, { nodeId: 'edge-01', name: 'impostor' });
    expect(clash.status).toBe(409);
    expect(errorCode(clash)).toBe('node.id_taken');
    expect(await keyRow(server, key.keyId)).toEqual({ use_count: 0, last_used_at: null });
    const { rows: original } = await server.db.query<{ name: string }>(
      `SELECT name FROM nodes WHERE node_id = 'edge-01'`,
    );
    expect(original).toEqual([{ name: 'edge box' }]);
    const { rows: events } = await server.db.query(
      `SELECT 1 FROM fleet_events WHERE type = 'node.enrolled'`,
    );
    expect(events).toHaveLength(1);

    const retry = await enroll(server, key.enrollmentKey, { nodeId: 'edge-02' });
    expect(retry.status, retry.raw).toBe(200);
    expect(retry.data.nodeId).toBe('edge-02');
  });

  it('a reusable key enrolls several nodes and stays active, counting its uses', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken, { reusable: true });
    const enrolled: Enrolled[] = [];
    for (let i = 0; i < 3; i++) {
      const result = await enroll(server, key.enrollmentKey);
      expect(result.status, result.raw).toBe(200);
      enrolled.push(result.data);
    }
    expect(new Set(enrolled.map((e) => e.nodeId)).size).toBe(3);
    for (const node of enrolled) expect((await heartbeat(server, node)).status).toBe(200);
    const [view] = await listKeys(server, server.adminToken);
    expect(view).toMatchObject({ state: 'active', useCount: 3 });
  });

  it("the key's labels merge under the request's labels; the request wins on a conflict", async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken, {
      labels: { site: 'lab-3', tier: 'edge' },
    });
    const result = await enroll(server, key.enrollmentKey, { labels: { tier: 'core', rack: '4' } });
    expect(result.status, result.raw).toBe(200);
    const { rows } = await server.db.query<{ labels: Record<string, string> }>(
      `SELECT labels FROM nodes WHERE node_id = $1`,
      [result.data.nodeId],
    );
    expect(rows[0]!.labels).toEqual({ site: 'lab-3', tier: 'core', rack: '4' });
  });

  it('device.enroll is rate limited per address: the 4th call in a minute → rate_limited (429)', async () => {
    await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '3' } });
    const key = await createKey(server, server.adminToken, { reusable: true });
    for (let i = 0; i < 3; i++) expect((await enroll(server, key.enrollmentKey)).status).toBe(200);
    const limited = await enroll(server, key.enrollmentKey);
    expect(limited.status).toBe(429);
    expect(errorCode(limited)).toBe('rate_limited');
    expect((await keyRow(server, key.keyId)).use_count).toBe(3);
  });

  it('enrollment keys and node tokens never appear in the server logs', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken);
    const enrolled = await enroll(server, key.enrollmentKey, { nodeId: 'logged-node' });
    expect(enrolled.status).toBe(200);
    const spent = await enroll(server, key.enrollmentKey);
    expect(errorCode(spent)).toBe('enrollment.key_spent');
    expect((await heartbeat(server, enrolled.data)).status).toBe(200);
    const logs = server.logs();
    expect(logs).toContain('device.enroll');
    expect(logs).not.toContain(key.enrollmentKey);
    expect(logs).not.toContain(key.enrollmentKey.slice(4));
    expect(logs).not.toContain(enrolled.data.nodeToken);
    expect(logs).not.toContain(enrolled.data.nodeToken.slice(4));
  });
});

describe('device.enrollBatch (a fleet on one reusable key)', () => {
  const fleet = (n: number, extra: (i: number) => Record<string, unknown> = () => ({})) =>
    Array.from({ length: n }, (_, i) => ({ name: `fleet ${i}`, nodeType: 'sim', ...extra(i) }));

  function enrollBatch(server: TestServer, enrollmentKey: string, nodes: unknown[]) {
    return mutate<{ nodes: Enrolled[] }>(server.url, 'device.enrollBatch', {
      enrollmentKey,
      nodes,
    });
  }

  async function nodeCount(server: TestServer): Promise<number> {
    const { rows } = await server.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM nodes`);
    return rows[0]!.n;
  }

  it('enrolls every node in order, owned by the key creator, each token working; the key counts every use and each node has its node.enrolled event', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken, { reusable: true });
    const batch = await enrollBatch(
      server,
      key.enrollmentKey,
      fleet(3, (i) => ({ nodeId: `fleet-${i}` })),
    );
    expect(batch.status, batch.raw).toBe(200);
    expect(batch.data.nodes.map((n) => n.nodeId)).toEqual(['fleet-0', 'fleet-1', 'fleet-2']);
    for (const node of batch.data.nodes) {
      expect(node.ownerParticipantId).toBe(server.adminParticipantId);
      expect((await heartbeat(server, node)).status).toBe(200);
    }
    expect((await keyRow(server, key.keyId)).use_count).toBe(3);
    const { rows } = await server.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM fleet_events WHERE type = 'node.enrolled'`,
    );
    expect(rows[0]!.n).toBe(3);
  });

  it('several nodes on a single-use key → enrollment.key_single_use (409); nothing enrolled, the key unused', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken);
    const refused = await enrollBatch(server, key.enrollmentKey, fleet(2));
    expect(refused.status).toBe(409);
    expect(errorCode(refused)).toBe('enrollment.key_single_use');
    expect(await nodeCount(server)).toBe(0);
    expect((await keyRow(server, key.keyId)).use_count).toBe(0);
    // One node is fine: the key is then spent, as with device.enroll.
    expect((await enrollBatch(server, key.enrollmentKey, fleet(1))).status).toBe(200);
    expect(errorCode(await enrollBatch(server, key.enrollmentKey, fleet(1)))).toBe(
      'enrollment.key_spent',
    );
  });

  it('all or none: a taken node id in the batch → node.id_taken and no node of the batch exists', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken, { reusable: true });
    expect((await enroll(server, key.enrollmentKey, { nodeId: 'taken' })).status).toBe(200);
    const batch = await enrollBatch(
      server,
      key.enrollmentKey,
      fleet(3, (i) => ({ nodeId: i === 2 ? 'taken' : `fresh-${i}` })),
    );
    expect(errorCode(batch)).toBe('node.id_taken');
    expect(await nodeCount(server)).toBe(1);
    expect((await keyRow(server, key.keyId)).use_count).toBe(1);
  });

  it('the public rate limit counts a batch once: 2 calls of 200 nodes pass a limit of 2 per minute, the 3rd call → rate_limited', async () => {
    await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '2' } });
    const key = await createKey(server, server.adminToken, { reusable: true });
    for (let i = 0; i < 2; i++) {
      const batch = await enrollBatch(server, key.enrollmentKey, fleet(200));
      expect(batch.status, batch.raw).toBe(200);
      expect(batch.data.nodes).toHaveLength(200);
    }
    expect(errorCode(await enrollBatch(server, key.enrollmentKey, fleet(1)))).toBe('rate_limited');
    expect(await nodeCount(server)).toBe(400);
  });

  it('at most 500 nodes per call → request.invalid (400)', async () => {
    await using server = await startTestServer();
    const key = await createKey(server, server.adminToken, { reusable: true });
    const tooMany = await enrollBatch(server, key.enrollmentKey, fleet(501));
    expect(tooMany.status).toBe(400);
    expect(errorCode(tooMany)).toBe('request.invalid');
  });
});
