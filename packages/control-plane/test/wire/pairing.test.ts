/**
 * Pairing (device first) over plain HTTP against a real server: request → operator
 * approves/rejects → daemon claims its node token once. Expiry is simulated by moving
 * `expires_at` into the past, never by waiting.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, query, type CallResult } from '../http.js';
import { createTestDatabase } from '../db.js';
import { startTestServer, type TestServer } from '../server.js';

interface Requested {
  requestId: string;
  pairingCode: string;
  claimSecret: string;
  expiresAt: string;
}
interface PairingView {
  requestId: string;
  pairingCode: string;
  state: string;
  name: string;
  nodeType: string;
  platform: string | null;
  requestedNodeId: string | null;
  metadata: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  nodeId: string | null;
}
interface Claimed {
  state: string;
  nodeId?: string;
  nodeToken?: string;
  ownerParticipantId?: string;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const newSecret = (): string => randomBytes(32).toString('base64url');

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

function request(
  server: TestServer,
  extra: Record<string, unknown> = {},
): Promise<CallResult<Requested>> {
  return mutate<Requested>(server.url, 'pairing.request', {
    name: 'edge box',
    nodeType: 'daemon',
    ...extra,
  });
}

async function requestOk(
  server: TestServer,
  extra: Record<string, unknown> = {},
): Promise<Requested> {
  const result = await request(server, extra);
  expect(result.status, result.raw).toBe(200);
  return result.data;
}

async function list(server: TestServer, token: string, state?: string): Promise<PairingView[]> {
  const listed = await query<{ items: PairingView[] }>(
    server.url,
    'pairing.list',
    state ? { state } : undefined,
    { token },
  );
  expect(listed.status, listed.raw).toBe(200);
  return listed.data.items;
}

function decide(server: TestServer, token: string, verb: 'approve' | 'reject', requestId: string) {
  return mutate<{ requestId: string; state: string }>(
    server.url,
    `pairing.${verb}`,
    { requestId },
    { token },
  );
}

function claim(
  server: TestServer,
  requestId: string,
  claimSecret: string,
): Promise<CallResult<Claimed>> {
  return mutate<Claimed>(server.url, 'pairing.claim', { requestId, claimSecret });
}

function heartbeat(server: TestServer, nodeId: string, nodeToken: string): Promise<CallResult> {
  return mutate(
    server.url,
    'runtimenode.heartbeat',
    { nodeId, healthState: 'online' },
    { token: nodeToken },
  );
}

async function expireRequest(server: TestServer, requestId: string): Promise<void> {
  await server.db.query(
    `UPDATE pairing_requests SET expires_at = now() - interval '1 second' WHERE id = $1`,
    [requestId],
  );
}

async function storedState(server: TestServer, requestId: string): Promise<string | undefined> {
  const { rows } = await server.db.query<{ state: string }>(
    `SELECT state FROM pairing_requests WHERE id = $1`,
    [requestId],
  );
  return rows[0]?.state;
}

async function eventTypes(server: TestServer, requestId: string): Promise<string[]> {
  const { rows } = await server.db.query<{ type: string }>(
    `SELECT type FROM fleet_events WHERE payload->>'requestId' = $1 ORDER BY id`,
    [requestId],
  );
  return rows.map((r) => r.type);
}

describe('pairing: the happy path', () => {
  it('request → list shows it pending with its code → approve → claim returns the token once → it works → a second claim has no token', async () => {
    await using server = await startTestServer();
    const claimSecret = newSecret();
    const requested = await requestOk(server, {
      claimSecret,
      platform: 'linux-x64',
      metadata: { serial: 'A1' },
    });
    expect(requested.claimSecret).toBe(claimSecret);
    expect(requested.pairingCode).toMatch(/^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$/);

    const [pending] = await list(server, server.adminToken);
    expect(pending).toMatchObject({
      requestId: requested.requestId,
      pairingCode: requested.pairingCode,
      state: 'pending',
      name: 'edge box',
      nodeType: 'daemon',
      platform: 'linux-x64',
      metadata: { serial: 'A1' },
      expiresAt: requested.expiresAt,
      decidedBy: null,
      nodeId: null,
    });
    expect(JSON.stringify(pending)).not.toContain(claimSecret);

    expect((await claim(server, requested.requestId, claimSecret)).data).toEqual({
      state: 'pending',
    });

    const approved = await decide(server, server.adminToken, 'approve', requested.requestId);
    expect(approved.status, approved.raw).toBe(200);
    expect(approved.data).toEqual({ requestId: requested.requestId, state: 'approved' });

    const [decided] = await list(server, server.adminToken);
    expect(decided).toMatchObject({ state: 'approved', decidedBy: server.adminParticipantId });
    const nodeId = decided!.nodeId!;
    expect(nodeId).toMatch(/^node-/);
    // The identity exists (listed offline, owned by the approver) but has no token until the claim.
    const { rows: before } = await server.db.query<{
      owner_participant_id: string;
      token_hash: Buffer | null;
      platform: string;
    }>(`SELECT owner_participant_id, token_hash, platform FROM nodes WHERE node_id = $1`, [nodeId]);
    expect(before).toEqual([
      { owner_participant_id: server.adminParticipantId, token_hash: null, platform: 'linux-x64' },
    ]);
    const { rows: presence } = await server.db.query(
      `SELECT health_state FROM runtime_node_presence WHERE node_id = $1`,
      [nodeId],
    );
    expect(presence).toEqual([{ health_state: 'offline' }]);

    const first = await claim(server, requested.requestId, claimSecret);
    expect(first.status, first.raw).toBe(200);
    expect(first.data).toEqual({
      state: 'approved',
      nodeId,
      nodeToken: expect.stringMatching(/^tnd_[A-Za-z0-9_-]{43}$/) as unknown,
      ownerParticipantId: server.adminParticipantId,
    });
    const nodeToken = first.data.nodeToken!;
    const { rows: after } = await server.db.query<{ token_hash: Buffer }>(
      `SELECT token_hash FROM nodes WHERE node_id = $1`,
      [nodeId],
    );
    expect(after[0]!.token_hash.equals(sha256(nodeToken))).toBe(true);

    const beat = await heartbeat(server, nodeId, nodeToken);
    expect(beat.status, beat.raw).toBe(200);
    expect(JSON.parse(beat.raw)).toEqual({ result: { data: { json: null } } });

    const second = await claim(server, requested.requestId, claimSecret);
    expect(second.status).toBe(200);
    expect(second.data).toEqual({ state: 'claimed' });
    expect(second.raw).not.toContain('tnd_');
    expect((await list(server, server.adminToken))[0]!.state).toBe('claimed');
    expect(await eventTypes(server, requested.requestId)).toEqual([
      'pairing.requested',
      'pairing.approved',
      'node.enrolled',
      'node.updated',
    ]);
  });

  it('without a claimSecret the server generates one; only its SHA-256 and the peer address are stored', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server);
    expect(requested.claimSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const { rows } = await server.db.query<{
      claim_secret_hash: Buffer;
      requester_address: string | null;
    }>(`SELECT claim_secret_hash, requester_address FROM pairing_requests WHERE id = $1`, [
      requested.requestId,
    ]);
    expect(rows[0]!.claim_secret_hash.equals(sha256(requested.claimSecret))).toBe(true);
    expect(rows[0]!.requester_address).toMatch(/127\.0\.0\.1$/);
    const { rows: plaintext } = await server.db.query(
      `SELECT 1 FROM pairing_requests r WHERE row_to_json(r)::text LIKE '%' || $1 || '%'`,
      [requested.claimSecret],
    );
    expect(plaintext).toHaveLength(0);
  });

  it('a request stays pending for TETHER_PAIRING_TTL_SECONDS (database clock)', async () => {
    await using server = await startTestServer({ env: { TETHER_PAIRING_TTL_SECONDS: '120' } });
    const requested = await requestOk(server);
    const { rows } = await server.db.query<{ ttl: number }>(
      `SELECT extract(epoch FROM expires_at - created_at)::int AS ttl FROM pairing_requests WHERE id = $1`,
      [requested.requestId],
    );
    expect(rows[0]!.ttl).toBe(120);
  });

  it('the requested nodeId becomes the node id on approval', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server, { nodeId: 'kiosk-7' });
    expect((await decide(server, server.adminToken, 'approve', requested.requestId)).status).toBe(
      200,
    );
    const claimed = await claim(server, requested.requestId, requested.claimSecret);
    expect(claimed.data.nodeId).toBe('kiosk-7');
    expect((await heartbeat(server, 'kiosk-7', claimed.data.nodeToken!)).status).toBe(200);
  });
});

function decideBy(
  server: TestServer,
  token: string,
  verb: 'approve' | 'reject',
  target: Record<string, unknown>,
) {
  return mutate<{ requestId: string; state: string }>(server.url, `pairing.${verb}`, target, {
    token,
  });
}

describe('pairing: decide by the code the device shows', () => {
  it('approve { pairingCode } approves that request (case and dash do not matter); the daemon claims its token', async () => {
    await using server = await startTestServer();
    const other = await requestOk(server);
    const requested = await requestOk(server, { nodeId: 'by-code' });
    const typed = requested.pairingCode.toLowerCase().replace('-', '');
    const approved = await decideBy(server, server.adminToken, 'approve', { pairingCode: typed });
    expect(approved.status, approved.raw).toBe(200);
    expect(approved.data).toEqual({ requestId: requested.requestId, state: 'approved' });
    expect(await storedState(server, other.requestId)).toBe('pending');
    const claimed = await claim(server, requested.requestId, requested.claimSecret);
    expect(claimed.data).toMatchObject({ state: 'approved', nodeId: 'by-code' });
  });

  it('reject { pairingCode } rejects that request', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server);
    const rejected = await decideBy(server, server.adminToken, 'reject', {
      pairingCode: requested.pairingCode,
    });
    expect(rejected.status, rejected.raw).toBe(200);
    expect(rejected.data).toEqual({ requestId: requested.requestId, state: 'rejected' });
  });

  it('a code no request has → pairing.not_found (404); a decided one → pairing.not_pending (409)', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server);
    let unknown = 'ZZZZ-ZZZZ';
    while (unknown === requested.pairingCode) unknown = 'YYYY-YYYY';
    const missing = await decideBy(server, server.adminToken, 'approve', { pairingCode: unknown });
    expect(missing.status).toBe(404);
    expect(errorCode(missing)).toBe('pairing.not_found');
    await decideBy(server, server.adminToken, 'reject', { pairingCode: requested.pairingCode });
    const again = await decideBy(server, server.adminToken, 'approve', {
      pairingCode: requested.pairingCode,
    });
    expect(again.status).toBe(409);
    expect(errorCode(again)).toBe('pairing.not_pending');
  });

  it('a code several past requests drew, none pending → pairing.code_ambiguous (409); a pending one with it wins', async () => {
    await using server = await startTestServer();
    const first = await requestOk(server);
    const second = await requestOk(server);
    await decide(server, server.adminToken, 'reject', first.requestId);
    await decide(server, server.adminToken, 'reject', second.requestId);
    await server.db.query(`UPDATE pairing_requests SET pairing_code = $1 WHERE id = $2`, [
      first.pairingCode,
      second.requestId,
    ]);
    const ambiguous = await decideBy(server, server.adminToken, 'approve', {
      pairingCode: first.pairingCode,
    });
    expect(ambiguous.status).toBe(409);
    expect(errorCode(ambiguous)).toBe('pairing.code_ambiguous');
    const third = await requestOk(server);
    await server.db.query(`UPDATE pairing_requests SET pairing_code = $1 WHERE id = $2`, [
      first.pairingCode,
      third.requestId,
    ]);
    const approved = await decideBy(server, server.adminToken, 'approve', {
      pairingCode: first.pairingCode,
    });
    expect(approved.status, approved.raw).toBe(200);
    expect(approved.data.requestId).toBe(third.requestId);
  });

  it('exactly one of requestId and pairingCode: both, neither or a malformed code → request.invalid (400)', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server);
    for (const target of [
      { requestId: requested.requestId, pairingCode: requested.pairingCode },
      {},
      { pairingCode: 'not a code' },
    ]) {
      const bad = await decideBy(server, server.adminToken, 'approve', target);
      expect(bad.status, JSON.stringify(target)).toBe(400);
      expect(errorCode(bad)).toBe('request.invalid');
    }
    expect(await storedState(server, requested.requestId)).toBe('pending');
  });
});

describe('pairing: decisions', () => {
  it('reject → claim answers rejected with no token, and no node is created', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server, { nodeId: 'unwanted' });
    const rejected = await decide(server, server.adminToken, 'reject', requested.requestId);
    expect(rejected.status).toBe(200);
    expect(rejected.data).toEqual({ requestId: requested.requestId, state: 'rejected' });
    const claimed = await claim(server, requested.requestId, requested.claimSecret);
    expect(claimed.status).toBe(200);
    expect(claimed.data).toEqual({ state: 'rejected' });
    expect(
      (await server.db.query(`SELECT 1 FROM nodes WHERE node_id = 'unwanted'`)).rows,
    ).toHaveLength(0);
    expect(await eventTypes(server, requested.requestId)).toEqual([
      'pairing.requested',
      'pairing.rejected',
    ]);
  });

  it('a decided request cannot be decided again → pairing.not_pending (409); an unknown one → pairing.not_found (404)', async () => {
    await using server = await startTestServer();
    const approvedReq = await requestOk(server);
    const rejectedReq = await requestOk(server);
    expect((await decide(server, server.adminToken, 'approve', approvedReq.requestId)).status).toBe(
      200,
    );
    expect((await decide(server, server.adminToken, 'reject', rejectedReq.requestId)).status).toBe(
      200,
    );
    for (const [verb, id] of [
      ['approve', approvedReq.requestId],
      ['reject', approvedReq.requestId],
      ['approve', rejectedReq.requestId],
    ] as const) {
      const again = await decide(server, server.adminToken, verb, id);
      expect(again.status).toBe(409);
      expect(errorCode(again)).toBe('pairing.not_pending');
    }
    expect(await storedState(server, approvedReq.requestId)).toBe('approved');
    expect(await storedState(server, rejectedReq.requestId)).toBe('rejected');
    const unknown = await decide(
      server,
      server.adminToken,
      'approve',
      '00000000-0000-4000-8000-000000000000',
    );
    expect(unknown.status).toBe(404);
    expect(errorCode(unknown)).toBe('pairing.not_found');
  });

  it('an expired request cannot be approved or rejected → pairing.expired (409); it is marked expired once, with an event', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server, { nodeId: 'late-node' });
    await expireRequest(server, requested.requestId);
    const approve = await decide(server, server.adminToken, 'approve', requested.requestId);
    expect(approve.status).toBe(409);
    expect(errorCode(approve)).toBe('pairing.expired');
    expect(await storedState(server, requested.requestId)).toBe('expired');
    const reject = await decide(server, server.adminToken, 'reject', requested.requestId);
    expect(reject.status).toBe(409);
    expect(errorCode(reject)).toBe('pairing.expired');
    expect(
      (await server.db.query(`SELECT 1 FROM nodes WHERE node_id = 'late-node'`)).rows,
    ).toHaveLength(0);
    expect(await eventTypes(server, requested.requestId)).toEqual([
      'pairing.requested',
      'pairing.expired',
    ]);
    expect((await claim(server, requested.requestId, requested.claimSecret)).data).toEqual({
      state: 'expired',
    });
  });

  it('claiming an expired, still-pending request answers expired and marks it', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server);
    await expireRequest(server, requested.requestId);
    expect((await claim(server, requested.requestId, requested.claimSecret)).data).toEqual({
      state: 'expired',
    });
    expect(await storedState(server, requested.requestId)).toBe('expired');
    expect(await eventTypes(server, requested.requestId)).toEqual([
      'pairing.requested',
      'pairing.expired',
    ]);
  });

  it('approving a request whose nodeId is taken → node.id_taken (409); the request stays pending', async () => {
    await using server = await startTestServer();
    const first = await requestOk(server, { nodeId: 'dup-node' });
    expect((await decide(server, server.adminToken, 'approve', first.requestId)).status).toBe(200);
    const second = await requestOk(server, { nodeId: 'dup-node', name: 'impostor' });
    const clash = await decide(server, server.adminToken, 'approve', second.requestId);
    expect(clash.status).toBe(409);
    expect(errorCode(clash)).toBe('node.id_taken');
    expect(await storedState(server, second.requestId)).toBe('pending');
    expect(await eventTypes(server, second.requestId)).toEqual(['pairing.requested']);
    const { rows } = await server.db.query(`SELECT name FROM nodes WHERE node_id = 'dup-node'`);
    expect(rows).toEqual([{ name: 'edge box' }]);
    // Still decidable.
    expect((await decide(server, server.adminToken, 'reject', second.requestId)).status).toBe(200);
  });

  it('a member who is not an admin can list and approve; the node is owned by the approver', async () => {
    await using server = await startTestServer();
    const alice = await makeMember(server, 'alice');
    const requested = await requestOk(server);
    const listed = await list(server, alice.token);
    expect(listed.map((r) => r.requestId)).toEqual([requested.requestId]);
    const approved = await decide(server, alice.token, 'approve', requested.requestId);
    expect(approved.status, approved.raw).toBe(200);
    const claimed = await claim(server, requested.requestId, requested.claimSecret);
    expect(claimed.data.ownerParticipantId).toBe(alice.participantId);
    expect((await heartbeat(server, claimed.data.nodeId!, claimed.data.nodeToken!)).status).toBe(
      200,
    );
  });

  it('pairing.list needs a participant token: anonymous → auth.unauthenticated (401)', async () => {
    await using server = await startTestServer();
    const anonymous = await query(server.url, 'pairing.list');
    expect(anonymous.status).toBe(401);
    expect(errorCode(anonymous)).toBe('auth.unauthenticated');
    const approve = await mutate(server.url, 'pairing.approve', {
      requestId: '00000000-0000-4000-8000-000000000000',
    });
    expect(approve.status).toBe(401);
  });
});

describe('pairing: list', () => {
  it('members see pending requests and the ones they decided, newest first; admins see all', async () => {
    await using server = await startTestServer();
    const alice = await makeMember(server, 'alice');
    const bob = await makeMember(server, 'bob');
    const byAlice = await requestOk(server, { name: 'one' });
    const byBob = await requestOk(server, { name: 'two' });
    const open = await requestOk(server, { name: 'three' });
    expect((await decide(server, alice.token, 'approve', byAlice.requestId)).status).toBe(200);
    expect((await decide(server, bob.token, 'reject', byBob.requestId)).status).toBe(200);

    expect((await list(server, alice.token)).map((r) => r.requestId)).toEqual([
      open.requestId,
      byAlice.requestId,
    ]);
    expect((await list(server, bob.token)).map((r) => r.requestId)).toEqual([
      open.requestId,
      byBob.requestId,
    ]);
    expect((await list(server, server.adminToken)).map((r) => r.requestId)).toEqual([
      open.requestId,
      byBob.requestId,
      byAlice.requestId,
    ]);
    expect((await list(server, server.adminToken, 'rejected')).map((r) => r.requestId)).toEqual([
      byBob.requestId,
    ]);
    expect((await list(server, alice.token, 'rejected')).map((r) => r.requestId)).toEqual([]);
  });

  it('a stale pending request is listed as expired (computed; the read writes nothing)', async () => {
    await using server = await startTestServer();
    const stale = await requestOk(server, { name: 'stale' });
    const fresh = await requestOk(server, { name: 'fresh' });
    await expireRequest(server, stale.requestId);

    const all = await list(server, server.adminToken);
    expect(all.map((r) => [r.requestId, r.state])).toEqual([
      [fresh.requestId, 'pending'],
      [stale.requestId, 'expired'],
    ]);
    expect((await list(server, server.adminToken, 'pending')).map((r) => r.requestId)).toEqual([
      fresh.requestId,
    ]);
    expect((await list(server, server.adminToken, 'expired')).map((r) => r.requestId)).toEqual([
      stale.requestId,
    ]);
    // Members see pending requests only: an expired, undecided one is gone from their list.
    const alice = await makeMember(server, 'alice');
    expect((await list(server, alice.token)).map((r) => r.requestId)).toEqual([fresh.requestId]);
    expect(await storedState(server, stale.requestId)).toBe('pending');
    expect(await eventTypes(server, stale.requestId)).toEqual(['pairing.requested']);
  });
});

describe('pairing: re-sent requests', () => {
  it('re-sending with the same claimSecret while pending updates that row: same requestId and code, new name, no duplicate', async () => {
    await using server = await startTestServer();
    const claimSecret = newSecret();
    const first = await requestOk(server, { claimSecret, name: 'old name', metadata: { v: 1 } });
    // Age the row so the refreshed expiry is observably later.
    await server.db.query(
      `UPDATE pairing_requests SET expires_at = now() + interval '5 seconds' WHERE id = $1`,
      [first.requestId],
    );
    const again = await requestOk(server, {
      claimSecret,
      name: 'new name',
      nodeType: 'kiosk',
      platform: 'win',
      nodeId: 'kiosk-1',
    });
    expect(again.requestId).toBe(first.requestId);
    expect(again.pairingCode).toBe(first.pairingCode);
    expect(again.claimSecret).toBe(claimSecret);
    const { rows } = await server.db.query<{
      id: string;
      name: string;
      node_type: string;
      platform: string;
      requested_node_id: string;
      metadata: unknown;
      ttl: number;
    }>(
      `SELECT id, name, node_type, platform, requested_node_id, metadata,
              extract(epoch FROM expires_at - now())::int AS ttl
         FROM pairing_requests`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!).toMatchObject({
      id: first.requestId,
      name: 'new name',
      node_type: 'kiosk',
      platform: 'win',
      requested_node_id: 'kiosk-1',
      metadata: {},
    });
    expect(rows[0]!.ttl).toBeGreaterThan(500);
    const [listed] = await list(server, server.adminToken);
    expect(listed).toMatchObject({
      name: 'new name',
      state: 'pending',
      expiresAt: again.expiresAt,
    });
  });

  it('re-sending a claimSecret whose request was decided, or has expired → pairing.not_pending (409)', async () => {
    await using server = await startTestServer();
    const decided = await requestOk(server, { claimSecret: newSecret() });
    expect((await decide(server, server.adminToken, 'reject', decided.requestId)).status).toBe(200);
    const afterDecision = await request(server, { claimSecret: decided.claimSecret });
    expect(afterDecision.status).toBe(409);
    expect(errorCode(afterDecision)).toBe('pairing.not_pending');

    const stale = await requestOk(server, { claimSecret: newSecret() });
    await expireRequest(server, stale.requestId);
    const afterExpiry = await request(server, { claimSecret: stale.claimSecret });
    expect(afterExpiry.status).toBe(409);
    expect(errorCode(afterExpiry)).toBe('pairing.not_pending');
    expect(afterExpiry.error!.data.tetherError.details).toEqual({ state: 'expired' });
    expect(await storedState(server, stale.requestId)).toBe('expired');
    const { rows } = await server.db.query(`SELECT 1 FROM pairing_requests`);
    expect(rows).toHaveLength(2);
  });
});

describe('pairing: claims', () => {
  it('a wrong claimSecret and an unknown requestId both → pairing.not_found (404), indistinguishably', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server);
    expect((await decide(server, server.adminToken, 'approve', requested.requestId)).status).toBe(
      200,
    );
    const wrongSecret = await claim(server, requested.requestId, newSecret());
    const unknownId = await claim(
      server,
      '00000000-0000-4000-8000-000000000000',
      requested.claimSecret,
    );
    for (const result of [wrongSecret, unknownId]) {
      expect(result.status).toBe(404);
      expect(errorCode(result)).toBe('pairing.not_found');
    }
    expect(wrongSecret.error!.data.tetherError).toEqual(unknownId.error!.data.tetherError);
    // The wrong guess consumed nothing: the real daemon still gets its token.
    expect(await storedState(server, requested.requestId)).toBe('approved');
    expect(
      (await claim(server, requested.requestId, requested.claimSecret)).data.nodeToken,
    ).toMatch(/^tnd_/);
  });

  it('concurrent claims of an approved request yield exactly one token', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server);
    expect((await decide(server, server.adminToken, 'approve', requested.requestId)).status).toBe(
      200,
    );
    const claims = await Promise.all(
      Array.from({ length: 8 }, () => claim(server, requested.requestId, requested.claimSecret)),
    );
    expect(claims.map((c) => c.status)).toEqual(Array(8).fill(200));
    const withToken = claims.filter((c) => c.data.nodeToken !== undefined);
    expect(withToken).toHaveLength(1);
    expect(claims.filter((c) => c.data.state === 'claimed')).toHaveLength(7);
    const winner = withToken[0]!.data;
    const { rows } = await server.db.query<{ token_hash: Buffer }>(
      `SELECT token_hash FROM nodes WHERE node_id = $1`,
      [winner.nodeId],
    );
    expect(rows[0]!.token_hash.equals(sha256(winner.nodeToken!))).toBe(true);
    expect((await heartbeat(server, winner.nodeId!, winner.nodeToken!)).status).toBe(200);
    const { rows: events } = await server.db.query(
      `SELECT 1 FROM fleet_events WHERE type = 'node.updated' AND node_id = $1`,
      [winner.nodeId],
    );
    expect(events).toHaveLength(1);
  });
});

describe('pairing: limits, secrets, durability', () => {
  it('rate limit: the 4th pairing.request from one address within a minute → rate_limited (429)', async () => {
    await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '3' } });
    for (let i = 0; i < 3; i++) expect((await request(server)).status).toBe(200);
    const limited = await request(server);
    expect(limited.status).toBe(429);
    expect(errorCode(limited)).toBe('rate_limited');
    const { rows } = await server.db.query(`SELECT 1 FROM pairing_requests`);
    expect(rows).toHaveLength(3);
  });

  it('claim secrets and node tokens never appear in the server logs', async () => {
    await using server = await startTestServer();
    const requested = await requestOk(server);
    const wrong = await claim(server, requested.requestId, newSecret());
    expect(errorCode(wrong)).toBe('pairing.not_found');
    expect((await decide(server, server.adminToken, 'approve', requested.requestId)).status).toBe(
      200,
    );
    const claimed = await claim(server, requested.requestId, requested.claimSecret);
    const nodeToken = claimed.data.nodeToken!;
    expect((await heartbeat(server, claimed.data.nodeId!, nodeToken)).status).toBe(200);
    const logs = server.logs();
    expect(logs).toContain('pairing.claim');
    expect(logs).not.toContain(requested.claimSecret);
    expect(logs).not.toContain(nodeToken);
    expect(logs).not.toContain(nodeToken.slice(4));
  });

  it('pairing state is durable: a request approved before a restart is claimed after it', async () => {
    const database = await createTestDatabase();
    try {
      let requested: Requested;
      {
        await using before = await startTestServer({ databaseUrl: database.url });
        requested = await requestOk(before);
        expect(
          (await decide(before, before.adminToken, 'approve', requested.requestId)).status,
        ).toBe(200);
      }
      await using after = await startTestServer({ databaseUrl: database.url });
      const claimed = await claim(after, requested.requestId, requested.claimSecret);
      expect(claimed.data.state).toBe('approved');
      expect((await heartbeat(after, claimed.data.nodeId!, claimed.data.nodeToken!)).status).toBe(
        200,
      );
    } finally {
      await database.drop();
    }
  });
});
