/**
 * How every registry error code arises, once for both faces of the API: each case does its setup
 * (over tRPC, the setup is not what is tested) and returns the one call that gets the code,
 * described by procedure; `callOver` makes that call over tRPC (`/trpc`) or REST (`/api/v1`,
 * the route the procedure declares). A few refusals happen before any procedure is chosen
 * (unknown paths, batches): those cases say what to send on each face.
 * Driven by test/wire/error-codes.test.ts.
 */
import {
  ERROR_REGISTRY,
  SUPPORTED_CONTRACT_MAJORS,
  WIRE_PROCEDURES,
  type TetherErrorCode,
  type WireProcedureName,
} from '@tether/contracts';
import { expect } from 'vitest';
import { RestRoutes } from '../../src/server/rest/routes.js';
import { appRouter } from '../../src/trpc/root.js';
import { COMMAND_ERROR_CASES } from '../commands/error-cases.js';
import { mutate, mutateBatch, query, type CallResult } from '../http.js';
import { rest, type RestResult } from '../rest.js';
import type { TestServer } from '../server.js';
import { acquire, attachedNode, setPolicy } from './access-actors.js';
import { nodeOf, participant, sessionOf, type NodeActor, type ParticipantActor } from './actors.js';

export type Surface = 'trpc' | 'rest';

/** The call that gets the code: a procedure with its input and credentials. */
export interface FinalCall {
  procedure: WireProcedureName;
  input?: Record<string, unknown>;
  token?: string | undefined;
  headers?: Record<string, string>;
  /** Sent as the body verbatim (malformed JSON). */
  rawBody?: string;
}

/** A refusal before any procedure: what each face sends (null: the code cannot arise there). */
export interface RawCall {
  trpc: () => Promise<CallResult>;
  rest: (() => Promise<RestResult>) | null;
}

export type ErrorCase = (server: TestServer) => Promise<FinalCall | RawCall>;

/** REST has no batches (one operation per request): batch limits are tRPC's alone. */
export const NOT_ON_REST: TetherErrorCode[] = ['request.batch_too_large'];

/** What a face answered, reduced to what the error tests compare. */
export interface Answer {
  status: number;
  code: string | undefined;
  trpc?: CallResult;
  rest?: RestResult;
}

/** A REST refusal with the code's registered status, as exactly the REST error body. */
export function expectRestError(result: RestResult, code: TetherErrorCode): void {
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

const ROUTES = new RestRoutes(appRouter);

/** The REST request for a procedure call: path parameters from the input, the rest as query or body. */
function restRequest(call: FinalCall): {
  method: string;
  path: string;
  body?: unknown;
  query?: Record<string, string | number | boolean>;
} {
  const route = ROUTES.all.find((r) => r.procedure === call.procedure);
  if (!route) throw new Error(`${call.procedure} has no REST route`);
  const input = { ...call.input };
  let path = route.path;
  for (const name of route.pathParams) {
    path = path.replace(`{${name}}`, encodeURIComponent(String(input[name])));
    delete input[name];
  }
  if (route.method === 'GET' || route.method === 'DELETE') {
    return {
      method: route.method,
      path,
      query: input as Record<string, string | number | boolean>,
    };
  }
  return { method: route.method, path, body: input };
}

export async function callOver(
  surface: Surface,
  server: TestServer,
  made: FinalCall | RawCall,
): Promise<Answer | null> {
  if ('trpc' in made) {
    if (surface === 'trpc') {
      const r = await made.trpc();
      return { status: r.status, code: r.error?.data.tetherError.code, trpc: r };
    }
    if (made.rest === null) return null;
    const r = await made.rest();
    return { status: r.status, code: r.error?.code, rest: r };
  }
  const options = {
    token: made.token,
    ...(made.headers ? { headers: made.headers } : {}),
    ...(made.rawBody === undefined ? {} : { rawBody: made.rawBody }),
  };
  if (surface === 'trpc') {
    const r =
      WIRE_PROCEDURES[made.procedure].kind === 'query'
        ? await query(server.url, made.procedure, made.input ?? {}, options)
        : await mutate(server.url, made.procedure, made.input, options);
    return { status: r.status, code: r.error?.data.tetherError.code, trpc: r };
  }
  const request = restRequest(made);
  const r = await rest(server.url, request.method, request.path, request.body, {
    ...options,
    ...(request.query ? { query: request.query } : {}),
  });
  return { status: r.status, code: r.error?.code, rest: r };
}

const UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000';

async function enrollmentKey(server: TestServer, body: object = {}, token = server.adminToken) {
  const r = await mutate<{ keyId: string; enrollmentKey: string }>(
    server.url,
    'enrollment.createKey',
    body,
    { token },
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

const attachCall = (owner: ParticipantActor, node: NodeActor, sessionId: string): FinalCall => ({
  procedure: 'runtimenode.attach',
  input: {
    sessionId,
    participantId: owner.participantId,
    nodeId: node.nodeId,
    nodeVersion: '1.0',
    capabilities: {},
    healthState: 'online',
  },
  token: node.token,
});

/** Makes the call over tRPC (for setups). */
async function run(s: TestServer, call: FinalCall): Promise<void> {
  await callOver('trpc', s, call);
}

export const ERROR_CASES: Record<TetherErrorCode, ErrorCase> = {
  ...COMMAND_ERROR_CASES,
  'auth.unauthenticated': () => Promise.resolve({ procedure: 'session.list', input: {} }),
  'auth.forbidden': async (s) => ({
    procedure: 'participant.create',
    input: { name: 'x', role: 'member' },
    token: (await participant(s)).token,
  }),
  'auth.principal_mismatch': async (s) => {
    const owner = await participant(s);
    const [a, b] = [await nodeOf(s, owner), await nodeOf(s, owner)];
    return {
      procedure: 'runtimenode.heartbeat',
      input: { nodeId: b.nodeId, healthState: 'online' },
      token: a.token,
    };
  },
  'request.invalid': (s) =>
    Promise.resolve({ procedure: 'session.create', input: { name: 7 }, token: s.adminToken }),
  'request.malformed': (s) =>
    Promise.resolve({ procedure: 'session.create', token: s.adminToken, rawBody: '{' }),
  'request.too_large': (s) =>
    Promise.resolve({
      procedure: 'session.create',
      input: { name: 'x'.repeat(2 * 1024 * 1024) },
      token: s.adminToken,
    }),
  // REST has no batches (one operation per request): batch limits are tRPC's alone.
  'request.batch_too_large': (s) =>
    Promise.resolve({
      trpc: () =>
        mutateBatch(
          s.url,
          Array.from({ length: 51 }, (_, i) => ({
            path: 'session.create',
            input: { name: `b${i}` },
          })),
          { token: s.adminToken },
        ),
      rest: null,
    }),
  'request.unknown_procedure': (s) =>
    Promise.resolve({
      trpc: () => query(s.url, 'session.teleport', {}, { token: s.adminToken }),
      rest: () => rest(s.url, 'GET', '/sessions-teleport', undefined, { token: s.adminToken }),
    }),
  rate_limited: async (s) => {
    // The server under test allows 3 public calls a minute per address (both faces count).
    for (let i = 0; i < 3; i++) {
      await run(s, { procedure: 'pairing.request', input: { name: `d${i}`, nodeType: 'desktop' } });
    }
    return { procedure: 'pairing.request', input: { name: 'd3', nodeType: 'desktop' } };
  },
  'system.unavailable': (s) => {
    s.host.setDraining();
    return Promise.resolve({ procedure: 'system.info', input: {} });
  },
  'system.internal': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    const node = await nodeOf(s, owner);
    await s.db.query(
      `INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, node_version, capabilities)
       VALUES ($1, $2, $3, '1.0', '{"Not A Capability": 1}')`,
      [session, owner.participantId, node.nodeId],
    );
    return { procedure: 'runtimenode.roster', input: { sessionId: session }, token: owner.token };
  },
  'token.not_found': (s) =>
    Promise.resolve({
      procedure: 'token.revoke',
      input: { tokenId: UNKNOWN_UUID },
      token: s.adminToken,
    }),
  'enrollment.key_invalid': () =>
    Promise.resolve({
      procedure: 'device.enroll',
      input: enrollBody('tek_unknown-key-000000000000000000000'),
    }),
  'enrollment.key_expired': async (s) => {
    const key = await enrollmentKey(s);
    await s.db.query(
      `UPDATE enrollment_keys SET expires_at = now() - interval '1 second' WHERE id = $1`,
      [key.keyId],
    );
    return { procedure: 'device.enroll', input: enrollBody(key.enrollmentKey) };
  },
  'enrollment.key_spent': async (s) => {
    const key = await enrollmentKey(s);
    await run(s, { procedure: 'device.enroll', input: enrollBody(key.enrollmentKey) });
    return { procedure: 'device.enroll', input: enrollBody(key.enrollmentKey) };
  },
  'enrollment.key_revoked': async (s) => {
    const key = await enrollmentKey(s);
    await run(s, {
      procedure: 'enrollment.revokeKey',
      input: { keyId: key.keyId },
      token: s.adminToken,
    });
    return { procedure: 'device.enroll', input: enrollBody(key.enrollmentKey) };
  },
  'enrollment.key_single_use': async (s) => {
    const key = await enrollmentKey(s);
    const nodes = [0, 1].map((i) => ({ name: `fleet ${i}`, nodeType: 'daemon' }));
    return { procedure: 'device.enrollBatch', input: { enrollmentKey: key.enrollmentKey, nodes } };
  },
  'enrollment.key_not_found': (s) =>
    Promise.resolve({
      procedure: 'enrollment.revokeKey',
      input: { keyId: UNKNOWN_UUID },
      token: s.adminToken,
    }),
  'pairing.not_found': () =>
    Promise.resolve({
      procedure: 'pairing.claim',
      input: { requestId: UNKNOWN_UUID, claimSecret: 'x'.repeat(43) },
    }),
  'pairing.expired': async (s) => {
    const req = await pairingRequest(s);
    await s.db.query(
      `UPDATE pairing_requests SET expires_at = now() - interval '1 second' WHERE id = $1`,
      [req.requestId],
    );
    return {
      procedure: 'pairing.approve',
      input: { requestId: req.requestId },
      token: s.adminToken,
    };
  },
  'pairing.not_pending': async (s) => {
    const req = await pairingRequest(s);
    await run(s, {
      procedure: 'pairing.reject',
      input: { requestId: req.requestId },
      token: s.adminToken,
    });
    return {
      procedure: 'pairing.approve',
      input: { requestId: req.requestId },
      token: s.adminToken,
    };
  },
  'pairing.code_ambiguous': async (s) => {
    // Two decided requests that drew the same code (codes are unique only while pending).
    const first = await pairingRequest(s);
    const second = await pairingRequest(s);
    for (const { requestId } of [first, second]) {
      await run(s, { procedure: 'pairing.reject', input: { requestId }, token: s.adminToken });
    }
    await s.db.query(`UPDATE pairing_requests SET pairing_code = $1 WHERE id = $2`, [
      first.pairingCode,
      second.requestId,
    ]);
    return {
      procedure: 'pairing.approve',
      input: { pairingCode: first.pairingCode },
      token: s.adminToken,
    };
  },
  'events.cursor_expired': (s) =>
    Promise.resolve({
      procedure: 'fleet.list',
      input: { afterId: '999999999' },
      token: s.adminToken,
    }),
  'session.not_found': (s) =>
    Promise.resolve({
      procedure: 'session.get',
      input: { sessionId: UNKNOWN_UUID },
      token: s.adminToken,
    }),
  'session.permission_denied': async (s) => {
    const owner = await participant(s);
    const collaborator = await participant(s);
    const session = await sessionOf(s, owner);
    await run(s, {
      procedure: 'membership.add',
      input: {
        sessionId: session,
        participantId: collaborator.participantId,
        role: 'collaborator',
      },
      token: owner.token,
    });
    return {
      procedure: 'session.raiseFloor',
      input: { sessionId: session, minNodeVersion: '2.0' },
      token: collaborator.token,
    };
  },
  'session.floor_not_monotonic': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner, '2.0');
    return {
      procedure: 'session.raiseFloor',
      input: { sessionId: session, minNodeVersion: '1.9' },
      token: owner.token,
    };
  },
  'membership.not_found': async (s) => {
    const owner = await participant(s);
    const stranger = await participant(s);
    const session = await sessionOf(s, owner);
    return {
      procedure: 'membership.remove',
      input: { sessionId: session, participantId: stranger.participantId },
      token: owner.token,
    };
  },
  'membership.already_exists': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    return {
      procedure: 'membership.add',
      input: { sessionId: session, participantId: owner.participantId, role: 'viewer' },
      token: owner.token,
    };
  },
  'membership.last_owner': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    return {
      procedure: 'membership.update',
      input: { sessionId: session, participantId: owner.participantId, role: 'viewer' },
      token: owner.token,
    };
  },
  'participant.not_found': async (s) => {
    const owner = await participant(s);
    const session = await sessionOf(s, owner);
    return {
      procedure: 'membership.add',
      input: { sessionId: session, participantId: UNKNOWN_UUID, role: 'viewer' },
      token: owner.token,
    };
  },
  'participant.suspend_self': (s) =>
    Promise.resolve({
      procedure: 'participant.suspend',
      input: { participantId: s.adminParticipantId },
      token: s.adminToken,
    }),
  'policy.not_owner': async (s) => {
    const cast = await attachedNode(s);
    return {
      procedure: 'policy.set',
      input: { nodeId: cast.node.nodeId, capability: 'arm', policy: 'free' },
      token: cast.member.token,
    };
  },
  'policy.not_member': async (s) => {
    const cast = await attachedNode(s);
    await setPolicy(s, cast, 'arm', 'leased');
    return {
      procedure: 'lease.acquire',
      input: { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 60 },
      token: cast.viewer.token,
    };
  },
  'lease.held': async (s) => {
    const cast = await attachedNode(s);
    await setPolicy(s, cast, 'arm', 'leased');
    await acquire(s, cast.node.nodeId, 'arm', cast.owner);
    return {
      procedure: 'lease.acquire',
      input: { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 60 },
      token: cast.member.token,
    };
  },
  'lease.not_leased': async (s) => {
    const cast = await attachedNode(s);
    return {
      procedure: 'lease.acquire',
      input: { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 60 },
      token: cast.owner.token,
    };
  },
  'lease.not_found': (s) =>
    Promise.resolve({
      procedure: 'lease.renew',
      input: { leaseId: UNKNOWN_UUID, ttlSeconds: 60 },
      token: s.adminToken,
    }),
  'lease.not_holder': async (s) => {
    const cast = await attachedNode(s);
    await setPolicy(s, cast, 'arm', 'leased');
    const leaseId = await acquire(s, cast.node.nodeId, 'arm', cast.member);
    return {
      procedure: 'lease.renew',
      input: { leaseId, ttlSeconds: 60 },
      token: cast.owner.token,
    };
  },
  'lease.ended': async (s) => {
    const cast = await attachedNode(s);
    await setPolicy(s, cast, 'arm', 'leased');
    const leaseId = await acquire(s, cast.node.nodeId, 'arm', cast.member);
    await run(s, { procedure: 'lease.release', input: { leaseId }, token: cast.member.token });
    return {
      procedure: 'lease.renew',
      input: { leaseId, ttlSeconds: 60 },
      token: cast.member.token,
    };
  },
  'node.not_found': (s) =>
    Promise.resolve({
      procedure: 'node.get',
      input: { nodeId: 'no-such-node' },
      token: s.adminToken,
    }),
  'node.id_taken': async (s) => {
    const key = await enrollmentKey(s, { reusable: true });
    const twin: FinalCall = {
      procedure: 'device.enroll',
      input: enrollBody(key.enrollmentKey, { nodeId: 'twin' }),
    };
    await run(s, twin);
    return twin;
  },
  'node.id_not_allowed': async (s) => {
    const member = await participant(s);
    const key = await enrollmentKey(s, {}, member.token);
    return {
      procedure: 'device.enroll',
      input: enrollBody(key.enrollmentKey, { nodeId: 'named' }),
    };
  },
  'runtimenode.permission_denied': async (s) => {
    const owner = await participant(s);
    const stranger = await participant(s);
    const session = await sessionOf(s, owner);
    return {
      procedure: 'runtimenode.roster',
      input: { sessionId: session },
      token: stranger.token,
    };
  },
  // P9: a node holds one active attachment.
  'runtimenode.attach_conflict': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    await run(s, attachCall(owner, node, await sessionOf(s, owner)));
    return attachCall(owner, node, await sessionOf(s, owner));
  },
  // P10: a revoked attachment is terminal.
  'runtimenode.attach_revoked': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    const session = await sessionOf(s, owner);
    await run(s, attachCall(owner, node, session));
    await run(s, {
      procedure: 'runtimenode.revoke',
      input: { sessionId: session, nodeId: node.nodeId },
      token: owner.token,
    });
    return attachCall(owner, node, session);
  },
  'runtimenode.capabilityupdate_conflict': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    await run(s, attachCall(owner, node, await sessionOf(s, owner)));
    return {
      procedure: 'runtimenode.capabilityupdate',
      input: { nodeId: node.nodeId, capabilities: {}, healthChanges: { state: 'online' } },
      token: node.token,
    };
  },
  'runtimenode.not_attached': async (s) => {
    const node = await nodeOf(s, await participant(s));
    return {
      procedure: 'runtimenode.capabilityupdate',
      input: { nodeId: node.nodeId, capabilities: { a: {} }, healthChanges: { state: 'online' } },
      token: node.token,
    };
  },
  // P4: a node below the session's floor is read-only.
  'version.floor_exceeded': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    await run(s, attachCall(owner, node, await sessionOf(s, owner, '3.0')));
    return {
      procedure: 'runtimenode.capabilityupdate',
      input: { nodeId: node.nodeId, capabilities: { a: {} } },
      token: node.token,
    };
  },
  'version.ceiling_exceeded': (s) =>
    Promise.resolve({
      procedure: 'session.list',
      input: {},
      token: s.adminToken,
      headers: { 'x-tether-client-version': `${SUPPORTED_CONTRACT_MAJORS.max + 1}.0` },
    }),
  'version.unsupported': (s) =>
    Promise.resolve({
      procedure: 'session.list',
      input: {},
      token: s.adminToken,
      headers: { 'x-tether-client-version': `${SUPPORTED_CONTRACT_MAJORS.min - 1}.0` },
    }),
  'version.floor_malformed': async (s) => {
    const owner = await participant(s);
    const node = await nodeOf(s, owner);
    const session = await sessionOf(s, owner);
    await s.db.query(`ALTER TABLE sessions DROP CONSTRAINT sessions_min_node_version_format`);
    await s.db.query(`UPDATE sessions SET min_node_version = 'one.two' WHERE id = $1`, [session]);
    return attachCall(owner, node, session);
  },
};
