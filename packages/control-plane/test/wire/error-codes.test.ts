/**
 * Every code in the registry is produced over real HTTP with its registered status. The table
 * is checked against the registry itself, so a new code without a producer fails this file.
 */
import {
  ERROR_REGISTRY,
  SUPPORTED_CONTRACT_MAJORS,
  TETHER_ERROR_CODES,
  type TetherErrorCode,
} from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, mutateBatch, query, type CallResult } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, sessionOf } from './actors.js';

type Producer = (server: TestServer) => Promise<CallResult>;

const UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000';

async function enrollmentKey(server: TestServer, body: object = {}) {
  const r = await mutate<{ keyId: string; enrollmentKey: string }>(
    server.url,
    'enrollment.createKey',
    body,
    { token: server.adminToken },
  );
  return r.data;
}

async function pairingRequest(server: TestServer) {
  const r = await mutate<{ requestId: string; claimSecret: string; pairingCode: string }>(
    server.url,
    'pairing.request',
    { name: 'dev', nodeType: 'desktop' },
  );
  return r.data;
}

const enrollBody = (key: string, extra: object = {}) => ({
  enrollmentKey: key,
  name: 'n',
  nodeType: 'edge',
  ...extra,
});

const PRODUCERS: Record<TetherErrorCode, Producer> = {
  'auth.unauthenticated': (s) => query(s.url, 'session.list', {}),
  'auth.forbidden': async (s) =>
    mutate(
      s.url,
      'participant.create',
      { name: 'x', role: 'member' },
      { token: (await participant(s)).token },
    ),
  'auth.principal_mismatch': async (s) => {
    const owner = await participant(s);
    const [a, b] = [await nodeOf(s, owner), await nodeOf(s, owner)];
    return mutate(
      s.url,
      'runtimenode.heartbeat',
      { nodeId: b.nodeId, healthState: 'online' },
      { token: a.token },
    );
  },
  'request.invalid': (s) => mutate(s.url, 'session.create', { name: 7 }, { token: s.adminToken }),
  'request.malformed': (s) =>
    mutate(s.url, 'session.create', undefined, { token: s.adminToken, rawBody: '{' }),
  'request.too_large': (s) =>
    mutate(s.url, 'session.create', { name: 'x'.repeat(2 * 1024 * 1024) }, { token: s.adminToken }),
  'request.batch_too_large': (s) =>
    mutateBatch(
      s.url,
      Array.from({ length: 51 }, (_, i) => ({ path: 'session.create', input: { name: `b${i}` } })),
      { token: s.adminToken },
    ),
  'request.unknown_procedure': (s) => query(s.url, 'session.teleport', {}, { token: s.adminToken }),
  rate_limited: async (s) => {
    let last: CallResult | undefined;
    for (let i = 0; i < 4; i++)
      last = await mutate(s.url, 'pairing.request', { name: `d${i}`, nodeType: 'desktop' });
    return last!;
  },
  'system.unavailable': async (s) => {
    s.host.setDraining();
    return query(s.url, 'system.info');
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
    return query(s.url, 'runtimenode.roster', { sessionId: session }, { token: owner.token });
  },
  'token.not_found': (s) =>
    mutate(s.url, 'token.revoke', { tokenId: UNKNOWN_UUID }, { token: s.adminToken }),
  'enrollment.key_invalid': (s) =>
    mutate(s.url, 'device.enroll', enrollBody('tek_unknown-key-000000000000000000000')),
  'enrollment.key_expired': async (s) => {
    const key = await enrollmentKey(s);
    await s.db.query(
      `UPDATE enrollment_keys SET expires_at = now() - interval '1 second' WHERE id = $1`,
      [key.keyId],
    );
    return mutate(s.url, 'device.enroll', enrollBody(key.enrollmentKey));
  },
  'enrollment.key_spent': async (s) => {
    const key = await enrollmentKey(s);
    await mutate(s.url, 'device.enroll', enrollBody(key.enrollmentKey));
    return mutate(s.url, 'device.enroll', enrollBody(key.enrollmentKey));
  },
  'enrollment.key_revoked': async (s) => {
    const key = await enrollmentKey(s);
    await mutate(s.url, 'enrollment.revokeKey', { keyId: key.keyId }, { token: s.adminToken });
    return mutate(s.url, 'device.enroll', enrollBody(key.enrollmentKey));
  },
  'enrollment.key_single_use': async (s) => {
    const key = await enrollmentKey(s);
    const nodes = [0, 1].map((i) => ({ name: `fleet ${i}`, nodeType: 'daemon' }));
    return mutate(s.url, 'device.enrollBatch', { enrollmentKey: key.enrollmentKey, nodes });
  },
  'enrollment.key_not_found': (s) =>
    mutate(s.url, 'enrollment.revokeKey', { keyId: UNKNOWN_UUID }, { token: s.adminToken }),
  'pairing.not_found': (s) =>
    mutate(s.url, 'pairing.claim', { requestId: UNKNOWN_UUID, claimSecret: 'x'.repeat(43) }),
  'pairing.expired': async (s) => {
    const req = await pairingRequest(s);
    await s.db.query(
      `UPDATE pairing_requests SET expires_at = now() - interval '1 second' WHERE id = $1`,
      [req.requestId],
    );
    return mutate(s.url, 'pairing.approve', { requestId: req.requestId }, { token: s.adminToken });
  },
  'pairing.not_pending': async (s) => {
    const req = await pairingRequest(s);
    await mutate(s.url, 'pairing.reject', { requestId: req.requestId }, { token: s.adminToken });
    return mutate(s.url, 'pairing.approve', { requestId: req.requestId }, { token: s.adminToken });
  },
  'pairing.code_ambiguous': async (s) => {
    // Two decided requests that drew the same code (codes are unique only while pending).
    const options = { token: s.adminToken };
    const first = await pairingRequest(s);
    const second = await pairingRequest(s);
    await mutate(s.url, 'pairing.reject', { requestId: first.requestId }, options);
    await mutate(s.url, 'pairing.reject', { requestId: second.requestId }, options);
    await s.db.query(`UPDATE pairing_requests SET pairing_code = $1 WHERE id = $2`, [
      first.pairingCode,
      second.requestId,
    ]);
    return mutate(s.url, 'pairing.approve', { pairingCode: first.pairingCode }, options);
  },
  'events.cursor_expired': (s) =>
    query(s.url, 'fleet.list', { afterId: '999999999' }, { token: s.adminToken }),
  'session.not_found': (s) =>
    query(s.url, 'session.get', { sessionId: UNKNOWN_UUID }, { token: s.adminToken }),
  'session.permission_denied': async (s) => {
    const owner = await participant(s);
    const collaborator = await participant(s);
    const session = await sessionOf(s, owner);
    await mutate(
      s.url,
      'membership.add',
      { sessionId: session, participantId: collaborator.participantId, role: 'collaborator' },
      { token: owner.token },
    );
    return mutate(
      s.url,
      'session.raiseFloor',
      { sessionId: session, minClientVersion: '2.0' },
      { token: collaborator.token },
    );
  },
  'session.floor_not_monotonic': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner, '2.0');
    return mutate(
      s.url,
      'session.raiseFloor',
      { sessionId: session, minClientVersion: '1.9' },
      { token: owner.token },
    );
  },
  'membership.not_found': async (s) => {
    const owner = await participant(s);
    const stranger = await participant(s);
    const session = await sessionOf(s, owner);
    return mutate(
      s.url,
      'membership.remove',
      { sessionId: session, participantId: stranger.participantId },
      { token: owner.token },
    );
  },
  'membership.already_exists': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    return mutate(
      s.url,
      'membership.add',
      { sessionId: session, participantId: owner.participantId, role: 'viewer' },
      { token: owner.token },
    );
  },
  'membership.last_owner': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    return mutate(
      s.url,
      'membership.update',
      { sessionId: session, participantId: owner.participantId, role: 'viewer' },
      { token: owner.token },
    );
  },
  'participant.not_found': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    return mutate(
      s.url,
      'membership.add',
      { sessionId: session, participantId: UNKNOWN_UUID, role: 'viewer' },
      { token: owner.token },
    );
  },
  'participant.suspend_self': (s) =>
    mutate(
      s.url,
      'participant.suspend',
      { participantId: s.adminParticipantId },
      { token: s.adminToken },
    ),
  'node.not_found': (s) =>
    query(s.url, 'node.get', { nodeId: 'no-such-node' }, { token: s.adminToken }),
  'node.id_taken': async (s) => {
    const key = await enrollmentKey(s, { reusable: true });
    await mutate(s.url, 'device.enroll', enrollBody(key.enrollmentKey, { nodeId: 'twin' }));
    return mutate(s.url, 'device.enroll', enrollBody(key.enrollmentKey, { nodeId: 'twin' }));
  },
  'node.id_not_allowed': async (s) => {
    const member = await participant(s);
    const key = await mutate<{ enrollmentKey: string }>(
      s.url,
      'enrollment.createKey',
      {},
      { token: member.token },
    );
    return mutate(s.url, 'device.enroll', enrollBody(key.data.enrollmentKey, { nodeId: 'named' }));
  },
  'runtimenode.permission_denied': async (s) => {
    const owner = await participant(s);
    const stranger = await participant(s);
    const session = await sessionOf(s, owner);
    return query(s.url, 'runtimenode.roster', { sessionId: session }, { token: stranger.token });
  },
  'runtimenode.attach_conflict': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    const body = (sessionId: string) => ({
      sessionId,
      participantId: owner.participantId,
      nodeId: node.nodeId,
      clientVersion: '1.0',
      capabilities: {},
      healthState: 'online',
    });
    await mutate(s.url, 'runtimenode.attach', body(await sessionOf(s, owner)), {
      token: node.token,
    });
    return mutate(s.url, 'runtimenode.attach', body(await sessionOf(s, owner)), {
      token: node.token,
    });
  },
  'runtimenode.attach_revoked': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    const session = await sessionOf(s, owner);
    const body = {
      sessionId: session,
      participantId: owner.participantId,
      nodeId: node.nodeId,
      clientVersion: '1.0',
      capabilities: {},
      healthState: 'online',
    };
    await mutate(s.url, 'runtimenode.attach', body, { token: node.token });
    await mutate(
      s.url,
      'runtimenode.revoke',
      { sessionId: session, nodeId: node.nodeId },
      { token: owner.token },
    );
    return mutate(s.url, 'runtimenode.attach', body, { token: node.token });
  },
  'runtimenode.capabilityupdate_conflict': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    const session = await sessionOf(s, owner);
    await mutate(
      s.url,
      'runtimenode.attach',
      {
        sessionId: session,
        participantId: owner.participantId,
        nodeId: node.nodeId,
        clientVersion: '1.0',
        capabilities: {},
        healthState: 'online',
      },
      { token: node.token },
    );
    return mutate(
      s.url,
      'runtimenode.capabilityupdate',
      { nodeId: node.nodeId, capabilities: {}, healthChanges: { state: 'online' } },
      { token: node.token },
    );
  },
  'runtimenode.not_attached': async (s) => {
    const node = await nodeOf(s, await participant(s));
    return mutate(
      s.url,
      'runtimenode.capabilityupdate',
      { nodeId: node.nodeId, capabilities: { a: {} }, healthChanges: { state: 'online' } },
      { token: node.token },
    );
  },
  'version.floor_exceeded': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    const session = await sessionOf(s, owner, '3.0');
    await mutate(
      s.url,
      'runtimenode.attach',
      {
        sessionId: session,
        participantId: owner.participantId,
        nodeId: node.nodeId,
        clientVersion: '1.0',
        capabilities: {},
        healthState: 'online',
      },
      { token: node.token },
    );
    return mutate(
      s.url,
      'runtimenode.capabilityupdate',
      { nodeId: node.nodeId, capabilities: { a: {} } },
      { token: node.token },
    );
  },
  'version.ceiling_exceeded': (s) =>
    query(
      s.url,
      'session.list',
      {},
      {
        token: s.adminToken,
        headers: { 'x-tether-client-version': `${SUPPORTED_CONTRACT_MAJORS.max + 1}.0` },
      },
    ),
  'version.unsupported': (s) =>
    query(
      s.url,
      'session.list',
      {},
      {
        token: s.adminToken,
        headers: { 'x-tether-client-version': `${SUPPORTED_CONTRACT_MAJORS.min - 1}.0` },
      },
    ),
  'version.floor_malformed': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    const session = await sessionOf(s, owner);
    await s.db.query(`ALTER TABLE sessions DROP CONSTRAINT sessions_min_client_version_format`);
    await s.db.query(`UPDATE sessions SET min_client_version = 'one.two' WHERE id = $1`, [session]);
    return mutate(
      s.url,
      'runtimenode.attach',
      {
        sessionId: session,
        participantId: owner.participantId,
        nodeId: node.nodeId,
        clientVersion: '1.0',
        capabilities: {},
        healthState: 'online',
      },
      { token: node.token },
    );
  },
};

describe('every registry error code over HTTP', () => {
  it('the producer table covers exactly the registry', () => {
    expect(Object.keys(PRODUCERS).sort()).toEqual([...TETHER_ERROR_CODES].sort());
  });

  for (const code of TETHER_ERROR_CODES) {
    it(`${code} → HTTP ${ERROR_REGISTRY[code].httpStatus}`, async () => {
      await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '3' } });
      const result = await PRODUCERS[code](server);
      expect({ status: result.status, code: errorCode(result) }).toEqual({
        status: ERROR_REGISTRY[code].httpStatus,
        code,
      });
      expect(result.error?.data.httpStatus).toBe(ERROR_REGISTRY[code].httpStatus);
      expect(result.error?.data.tetherError.message.length).toBeGreaterThan(0);
      expect(result.raw).not.toMatch(/"stack"|node_modules|\.ts:\d+/);
    });
  }
});
