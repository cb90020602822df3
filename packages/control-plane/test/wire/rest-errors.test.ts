/**
 * Every registry error code has the same HTTP status over REST as over tRPC
 * (test/wire/error-codes.test.ts produces each one there; batch limits exist on tRPC only, REST
 * has no batches), and arrives as the REST error body
 * `{ "error": { code, message, details? } }`. The table is checked against the registry itself,
 * so a new code without a REST producer fails this file. Then the REST-only refusals: bad JSON,
 * wrong content type, wrong method, unknown paths, query-string typing, size limits.
 */
import {
  ERROR_REGISTRY,
  SUPPORTED_CONTRACT_MAJORS,
  TETHER_ERROR_CODES,
  type SessionId,
  type TetherErrorCode,
} from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { uniqueName } from '../fixtures.js';
import { errorCode, mutate } from '../http.js';
import { rest, type RestResult } from '../rest.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, type NodeActor, type ParticipantActor } from './actors.js';

/** null: the code cannot arise over REST (named in NOT_ON_REST). */
type Producer = ((server: TestServer) => Promise<RestResult>) | null;

/** REST has no batches (one operation per request): batch limits are tRPC's alone. */
const NOT_ON_REST: TetherErrorCode[] = ['request.batch_too_large'];

const UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000';

async function sessionOf(s: TestServer, owner: ParticipantActor, floor?: string) {
  const r = await rest<{ sessionId: SessionId }>(
    s.url,
    'POST',
    '/sessions',
    { name: uniqueName('s'), ...(floor ? { minClientVersion: floor } : {}) },
    { token: owner.token },
  );
  if (r.status !== 200) throw new Error(`POST /sessions failed: ${r.raw}`);
  return r.body.sessionId;
}

async function enrollmentKey(s: TestServer, body: object = {}) {
  const r = await rest<{ keyId: string; enrollmentKey: string }>(
    s.url,
    'POST',
    '/enrollment-keys',
    body,
    { token: s.adminToken },
  );
  return r.body;
}

async function pairingRequest(s: TestServer) {
  const r = await rest<{ requestId: string; claimSecret: string; pairingCode: string }>(
    s.url,
    'POST',
    '/pairing/requests',
    { name: 'dev', nodeType: 'desktop' },
  );
  return r.body;
}

const enrollBody = (key: string, extra: object = {}) => ({
  enrollmentKey: key,
  name: 'n',
  nodeType: 'edge',
  ...extra,
});

const attachBody = (owner: ParticipantActor, node: NodeActor, sessionId: string) => ({
  sessionId,
  participantId: owner.participantId,
  nodeId: node.nodeId,
  clientVersion: '1.0',
  capabilities: {},
  healthState: 'online',
});

function attach(s: TestServer, owner: ParticipantActor, node: NodeActor, sessionId: string) {
  return rest(s.url, 'POST', '/runtime-nodes/attach', attachBody(owner, node, sessionId), {
    token: node.token,
  });
}

const PRODUCERS: Record<TetherErrorCode, Producer> = {
  'auth.unauthenticated': (s) => rest(s.url, 'GET', '/sessions'),
  'auth.forbidden': async (s) =>
    rest(
      s.url,
      'POST',
      '/participants',
      { name: 'x', role: 'member' },
      { token: (await participant(s)).token },
    ),
  'auth.principal_mismatch': async (s) => {
    const owner = await participant(s);
    const [a, b] = [await nodeOf(s, owner), await nodeOf(s, owner)];
    return rest(
      s.url,
      'POST',
      '/runtime-nodes/heartbeat',
      { nodeId: b.nodeId, healthState: 'online' },
      { token: a.token },
    );
  },
  'request.invalid': (s) => rest(s.url, 'POST', '/sessions', { name: 7 }, { token: s.adminToken }),
  'request.malformed': (s) =>
    rest(s.url, 'POST', '/sessions', undefined, { token: s.adminToken, rawBody: '{' }),
  'request.too_large': (s) =>
    rest(
      s.url,
      'POST',
      '/sessions',
      { name: 'x'.repeat(2 * 1024 * 1024) },
      { token: s.adminToken },
    ),
  'request.batch_too_large': null,
  'request.unknown_procedure': (s) =>
    rest(s.url, 'GET', '/sessions-teleport', undefined, { token: s.adminToken }),
  rate_limited: async (s) => {
    let last: RestResult | undefined;
    for (let i = 0; i < 4; i++) {
      last = await rest(s.url, 'POST', '/pairing/requests', { name: `d${i}`, nodeType: 'desktop' });
    }
    return last!;
  },
  'system.unavailable': async (s) => {
    s.host.setDraining();
    return rest(s.url, 'GET', '/system/info');
  },
  'system.internal': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    const node = await nodeOf(s, owner);
    await s.db.query(
      `INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, client_version, capabilities)
       VALUES ($1, $2, $3, '1.0', '{"Not A Capability": 1}')`,
      [session, owner.participantId, node.nodeId],
    );
    return rest(s.url, 'GET', `/sessions/${session}/roster`, undefined, { token: owner.token });
  },
  'token.not_found': (s) =>
    rest(s.url, 'POST', `/tokens/${UNKNOWN_UUID}/revoke`, undefined, { token: s.adminToken }),
  'enrollment.key_invalid': (s) =>
    rest(s.url, 'POST', '/device/enroll', enrollBody('tek_unknown-key-000000000000000000000')),
  'enrollment.key_expired': async (s) => {
    const key = await enrollmentKey(s);
    await s.db.query(
      `UPDATE enrollment_keys SET expires_at = now() - interval '1 second' WHERE id = $1`,
      [key.keyId],
    );
    return rest(s.url, 'POST', '/device/enroll', enrollBody(key.enrollmentKey));
  },
  'enrollment.key_spent': async (s) => {
    const key = await enrollmentKey(s);
    await rest(s.url, 'POST', '/device/enroll', enrollBody(key.enrollmentKey));
    return rest(s.url, 'POST', '/device/enroll', enrollBody(key.enrollmentKey));
  },
  'enrollment.key_revoked': async (s) => {
    const key = await enrollmentKey(s);
    await rest(s.url, 'POST', `/enrollment-keys/${key.keyId}/revoke`, undefined, {
      token: s.adminToken,
    });
    return rest(s.url, 'POST', '/device/enroll', enrollBody(key.enrollmentKey));
  },
  'enrollment.key_single_use': async (s) => {
    const key = await enrollmentKey(s);
    const nodes = [0, 1].map((i) => ({ name: `fleet ${i}`, nodeType: 'daemon' }));
    return rest(s.url, 'POST', '/device/enroll-batch', { enrollmentKey: key.enrollmentKey, nodes });
  },
  'enrollment.key_not_found': (s) =>
    rest(s.url, 'POST', `/enrollment-keys/${UNKNOWN_UUID}/revoke`, undefined, {
      token: s.adminToken,
    }),
  'pairing.not_found': (s) =>
    rest(s.url, 'POST', `/pairing/requests/${UNKNOWN_UUID}/claim`, {
      claimSecret: 'x'.repeat(43),
    }),
  'pairing.expired': async (s) => {
    const req = await pairingRequest(s);
    await s.db.query(
      `UPDATE pairing_requests SET expires_at = now() - interval '1 second' WHERE id = $1`,
      [req.requestId],
    );
    return rest(
      s.url,
      'POST',
      '/pairing/approve',
      { requestId: req.requestId },
      { token: s.adminToken },
    );
  },
  'pairing.not_pending': async (s) => {
    const req = await pairingRequest(s);
    const options = { token: s.adminToken };
    await rest(s.url, 'POST', '/pairing/reject', { requestId: req.requestId }, options);
    return rest(s.url, 'POST', '/pairing/approve', { requestId: req.requestId }, options);
  },
  'pairing.code_ambiguous': async (s) => {
    // Two decided requests that drew the same code (codes are unique only while pending).
    const options = { token: s.adminToken };
    const first = await pairingRequest(s);
    const second = await pairingRequest(s);
    await rest(s.url, 'POST', '/pairing/reject', { requestId: first.requestId }, options);
    await rest(s.url, 'POST', '/pairing/reject', { requestId: second.requestId }, options);
    await s.db.query(`UPDATE pairing_requests SET pairing_code = $1 WHERE id = $2`, [
      first.pairingCode,
      second.requestId,
    ]);
    return rest(s.url, 'POST', '/pairing/approve', { pairingCode: first.pairingCode }, options);
  },
  'events.cursor_expired': (s) =>
    rest(s.url, 'POST', '/events/query', { afterId: '999999999' }, { token: s.adminToken }),
  'session.not_found': (s) =>
    rest(s.url, 'GET', `/sessions/${UNKNOWN_UUID}`, undefined, { token: s.adminToken }),
  'session.permission_denied': async (s) => {
    const owner = await participant(s);
    const collaborator = await participant(s);
    const session = await sessionOf(s, owner);
    await rest(
      s.url,
      'POST',
      `/sessions/${session}/members`,
      { participantId: collaborator.participantId, role: 'collaborator' },
      { token: owner.token },
    );
    return rest(
      s.url,
      'POST',
      `/sessions/${session}/raise-floor`,
      { minClientVersion: '2.0' },
      { token: collaborator.token },
    );
  },
  'session.floor_not_monotonic': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner, '2.0');
    return rest(
      s.url,
      'POST',
      `/sessions/${session}/raise-floor`,
      { minClientVersion: '1.9' },
      { token: owner.token },
    );
  },
  'membership.not_found': async (s) => {
    const owner = await participant(s);
    const stranger = await participant(s);
    const session = await sessionOf(s, owner);
    return rest(
      s.url,
      'DELETE',
      `/sessions/${session}/members/${stranger.participantId}`,
      undefined,
      {
        token: owner.token,
      },
    );
  },
  'membership.already_exists': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    return rest(
      s.url,
      'POST',
      `/sessions/${session}/members`,
      { participantId: owner.participantId, role: 'viewer' },
      { token: owner.token },
    );
  },
  'membership.last_owner': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    return rest(
      s.url,
      'PATCH',
      `/sessions/${session}/members/${owner.participantId}`,
      { role: 'viewer' },
      { token: owner.token },
    );
  },
  'participant.not_found': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    return rest(
      s.url,
      'POST',
      `/sessions/${session}/members`,
      { participantId: UNKNOWN_UUID, role: 'viewer' },
      { token: owner.token },
    );
  },
  'participant.suspend_self': (s) =>
    rest(s.url, 'POST', `/participants/${s.adminParticipantId}/suspend`, undefined, {
      token: s.adminToken,
    }),
  'node.not_found': (s) =>
    rest(s.url, 'GET', '/nodes/no-such-node', undefined, { token: s.adminToken }),
  'node.id_taken': async (s) => {
    const key = await enrollmentKey(s, { reusable: true });
    await rest(s.url, 'POST', '/device/enroll', enrollBody(key.enrollmentKey, { nodeId: 'twin' }));
    return rest(s.url, 'POST', '/device/enroll', enrollBody(key.enrollmentKey, { nodeId: 'twin' }));
  },
  'node.id_not_allowed': async (s) => {
    const member = await participant(s);
    const key = await rest<{ enrollmentKey: string }>(
      s.url,
      'POST',
      '/enrollment-keys',
      {},
      { token: member.token },
    );
    return rest(
      s.url,
      'POST',
      '/device/enroll',
      enrollBody(key.body.enrollmentKey, { nodeId: 'named' }),
    );
  },
  'runtimenode.permission_denied': async (s) => {
    const owner = await participant(s);
    const stranger = await participant(s);
    const session = await sessionOf(s, owner);
    return rest(s.url, 'GET', `/sessions/${session}/roster`, undefined, { token: stranger.token });
  },
  'runtimenode.attach_conflict': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    await attach(s, owner, node, await sessionOf(s, owner));
    return attach(s, owner, node, await sessionOf(s, owner));
  },
  'runtimenode.attach_revoked': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    const session = await sessionOf(s, owner);
    await attach(s, owner, node, session);
    await rest(s.url, 'POST', `/sessions/${session}/nodes/${node.nodeId}/revoke`, undefined, {
      token: owner.token,
    });
    return attach(s, owner, node, session);
  },
  'runtimenode.capabilityupdate_conflict': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    await attach(s, owner, node, await sessionOf(s, owner));
    return rest(
      s.url,
      'POST',
      '/runtime-nodes/capabilities',
      { nodeId: node.nodeId, capabilities: {}, healthChanges: { state: 'online' } },
      { token: node.token },
    );
  },
  'runtimenode.not_attached': async (s) => {
    const node = await nodeOf(s, await participant(s));
    return rest(
      s.url,
      'POST',
      '/runtime-nodes/capabilities',
      { nodeId: node.nodeId, capabilities: { a: {} }, healthChanges: { state: 'online' } },
      { token: node.token },
    );
  },
  'version.floor_exceeded': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    await attach(s, owner, node, await sessionOf(s, owner, '3.0'));
    return rest(
      s.url,
      'POST',
      '/runtime-nodes/capabilities',
      { nodeId: node.nodeId, capabilities: { a: {} } },
      { token: node.token },
    );
  },
  'version.ceiling_exceeded': (s) =>
    rest(s.url, 'GET', '/sessions', undefined, {
      token: s.adminToken,
      headers: { 'x-tether-client-version': '99.0' },
    }),
  'version.unsupported': (s) =>
    rest(s.url, 'GET', '/sessions', undefined, {
      token: s.adminToken,
      headers: { 'x-tether-client-version': `${SUPPORTED_CONTRACT_MAJORS.min - 1}.0` },
    }),
  'version.floor_malformed': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    const session = await sessionOf(s, owner);
    await s.db.query(`ALTER TABLE sessions DROP CONSTRAINT sessions_min_client_version_format`);
    await s.db.query(`UPDATE sessions SET min_client_version = 'one.two' WHERE id = $1`, [session]);
    return attach(s, owner, node, session);
  },
};

function expectRestError(result: RestResult, code: TetherErrorCode): void {
  expect({ status: result.status, code: result.error?.code }).toEqual({
    status: ERROR_REGISTRY[code].httpStatus,
    code,
  });
  // Exactly the REST error body: nothing of tRPC's envelope.
  expect(Object.keys(result.body as object)).toEqual(['error']);
  expect(Object.keys(result.error!).sort()).toEqual(
    result.error!.details === undefined ? ['code', 'message'] : ['code', 'details', 'message'],
  );
  expect(result.error!.message.length).toBeGreaterThan(0);
  expect(result.raw).not.toMatch(/"stack"|node_modules|\.ts:\d+/);
}

describe('every registry error code over REST, with the same status as over tRPC', () => {
  it('the producer table covers exactly the registry; only batch limits are tRPC-only', () => {
    expect(Object.keys(PRODUCERS).sort()).toEqual([...TETHER_ERROR_CODES].sort());
    const missing = TETHER_ERROR_CODES.filter((code) => PRODUCERS[code] === null);
    expect(missing).toEqual(NOT_ON_REST);
  });

  for (const code of TETHER_ERROR_CODES) {
    const produce = PRODUCERS[code];
    if (produce === null) continue;
    it(`${code} → HTTP ${ERROR_REGISTRY[code].httpStatus}`, async () => {
      await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '3' } });
      expectRestError(await produce(server), code);
    });
  }
});

describe('REST request handling', () => {
  it('validation errors name the field paths; rate limits say when to retry', async () => {
    await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '1' } });
    const invalid = await rest(
      server.url,
      'POST',
      '/sessions',
      { name: 7, extra: true },
      { token: server.adminToken },
    );
    expectRestError(invalid, 'request.invalid');
    const issues = invalid.error!.details!.issues as { path: string; fields?: string[] }[];
    expect(issues.map((i) => i.path)).toContain('name');
    expect(issues.flatMap((i) => i.fields ?? [])).toContain('extra');

    await rest(server.url, 'POST', '/pairing/requests', { name: 'a', nodeType: 'desktop' });
    const limited = await rest(server.url, 'POST', '/pairing/requests', {
      name: 'b',
      nodeType: 'desktop',
    });
    expectRestError(limited, 'rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.error!.details!.retryAfterMs).toEqual(expect.any(Number));
  });

  it('query strings are typed by the schema: numbers and repeated keys, bad text refused', async () => {
    await using server = await startTestServer();
    const token = server.adminToken;
    for (let i = 0; i < 3; i++) {
      await rest(server.url, 'POST', '/sessions', { name: `s${i}` }, { token });
    }
    const page = await rest<{ items: unknown[]; nextCursor: string | null }>(
      server.url,
      'GET',
      '/sessions',
      undefined,
      { token, query: { limit: 2 } },
    );
    expect(page.status).toBe(200);
    expect(page.body.items).toHaveLength(2);
    const next = await rest<{ items: unknown[]; nextCursor: string | null }>(
      server.url,
      'GET',
      '/sessions',
      undefined,
      { token, query: { limit: 2, cursor: page.body.nextCursor! } },
    );
    expect(next.body.items).toHaveLength(1);
    for (const query of [{ limit: 'two' }, { limit: '' }, { limit: ['1', '2'] }, { bogus: 'x' }]) {
      const bad = await rest(server.url, 'GET', '/sessions', undefined, { token, query });
      expectRestError(bad, 'request.invalid');
    }
  });

  it('bodies are JSON: wrong content type, wrong method and unknown paths get typed errors', async () => {
    await using server = await startTestServer();
    const token = server.adminToken;
    const form = await rest(server.url, 'POST', '/sessions', undefined, {
      token,
      rawBody: 'name=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectRestError(form, 'request.invalid');
    const charset = await rest(server.url, 'POST', '/sessions', undefined, {
      token,
      rawBody: JSON.stringify({ name: 'utf8' }),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(charset.status).toBe(200);
    const array = await rest(server.url, 'POST', '/sessions', [1], { token });
    expectRestError(array, 'request.invalid');
    const wrongMethod = await rest(server.url, 'DELETE', '/sessions', undefined, { token });
    expectRestError(wrongMethod, 'request.invalid');
    expect(wrongMethod.headers.get('allow')).toBe('POST, GET');
    expectRestError(
      await rest(server.url, 'GET', '/nope', undefined, { token }),
      'request.unknown_procedure',
    );
    expectRestError(
      await rest(server.url, 'GET', '', undefined, { token }),
      'request.unknown_procedure',
    );
    const badEscape = await rest(server.url, 'GET', '/nodes/%E0%A4%A', undefined, { token });
    expectRestError(badEscape, 'request.invalid');
    // Path parameters are decoded, and win over a body field of the same name.
    const escaped = await rest(
      server.url,
      'GET',
      `/nodes/${encodeURIComponent('a:b')}`,
      undefined,
      {
        token,
      },
    );
    expectRestError(escaped, 'node.not_found');
    expect(escaped.error!.message).not.toContain('%3A');
    // The server keeps serving.
    expect((await rest(server.url, 'GET', '/system/info')).status).toBe(200);
  });

  it('an oversized body is refused by its declared length and by what arrives', async () => {
    await using server = await startTestServer({ env: { TETHER_MAX_BODY_BYTES: '4096' } });
    const big = JSON.stringify({ name: 'x'.repeat(8_000) });
    const declared = await rest(server.url, 'POST', '/sessions', undefined, {
      token: server.adminToken,
      rawBody: big,
    });
    expectRestError(declared, 'request.too_large');
    // Chunked (no content-length): counted while reading.
    const chunked = await fetch(`${server.url}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminToken}` },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(big));
          controller.close();
        },
      }),
      duplex: 'half',
    });
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { error: { code: string } }).error.code).toBe(
      'request.too_large',
    );
  });

  it('a REST call never loosens the tRPC wire (contract schemas are not coerced in place)', async () => {
    await using server = await startTestServer();
    const token = server.adminToken;
    // REST traffic over every kind of input first: query strings with numbers, bodies with
    // booleans and numbers.
    expect(
      (await rest(server.url, 'GET', '/nodes', undefined, { token, query: { limit: 5 } })).status,
    ).toBe(200);
    const key = await rest(
      server.url,
      'POST',
      '/enrollment-keys',
      { reusable: true, expiresInSeconds: 600 },
      { token },
    );
    expect(key.status).toBe(200);
    // Text where the contract wants a boolean or a number stays an error, over tRPC…
    const trpc = await mutate(server.url, 'enrollment.createKey', { reusable: 'false' }, { token });
    expect(errorCode(trpc)).toBe('request.invalid');
    const trpcNumber = await mutate(
      server.url,
      'enrollment.createKey',
      { expiresInSeconds: '600' },
      { token },
    );
    expect(errorCode(trpcNumber)).toBe('request.invalid');
    // …and in REST bodies (JSON has types; only query strings are text).
    const restBody = await rest(
      server.url,
      'POST',
      '/enrollment-keys',
      { reusable: 'false' },
      { token },
    );
    expectRestError(restBody, 'request.invalid');
  });
});
