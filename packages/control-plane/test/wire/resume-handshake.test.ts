/**
 * Resume in the WebSocket handshake: a node's credential and resume claim in the upgrade
 * request, checked and bound before the 101, answered in `x-tether-handshake`. Through real
 * sockets against a real server and database.
 */
import { once } from 'node:events';
import {
  CONTRACT_VERSION,
  HandshakeAnswer,
  decodeHeaderJson,
  encodeHeaderJson,
  type ResumeClaim,
  type SessionId,
} from '@tether/contracts';
import { capabilitiesDigest } from '@tether/contracts/node';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventually } from '../eventually.js';
import { mutate, metricSample } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, sessionOf, type NodeActor, type ParticipantActor } from './actors.js';

const CAPABILITIES = { echo: { description: 'says it back' } };

type Upgrade =
  | { kind: 'open'; ws: WebSocket; answer: HandshakeAnswer | null; raw: string | undefined }
  | { kind: 'refused'; status: number; body: string };

/** A WebSocket upgrade with the credential (and claim) in its headers, no connectionParams. */
function upgrade(server: TestServer, headers: Record<string, string>): Promise<Upgrade> {
  const ws = new WebSocket(server.wsUrl, { headers, perMessageDeflate: false });
  ws.on('message', (data: Buffer) => {
    if (data.toString('utf8') === 'PING') ws.send('PONG');
  });
  return new Promise((resolve, reject) => {
    let raw: string | undefined;
    ws.once('upgrade', (res) => {
      const h = res.headers['x-tether-handshake'];
      raw = Array.isArray(h) ? h[0] : h;
    });
    ws.once('open', () => {
      const decoded = raw === undefined ? null : decodeHeaderJson(HandshakeAnswer, raw);
      resolve({ kind: 'open', ws, answer: decoded?.ok ? decoded.value : null, raw });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ kind: 'refused', status: res.statusCode ?? 0, body });
        ws.terminate();
      });
    });
    ws.on('error', (error) => reject(error));
  });
}

function headersFor(node: NodeActor, claim?: ResumeClaim | string): Record<string, string> {
  return {
    authorization: `Bearer ${node.token}`,
    'x-tether-client-version': CONTRACT_VERSION,
    ...(claim === undefined
      ? {}
      : { 'x-tether-resume': typeof claim === 'string' ? claim : encodeHeaderJson(claim) }),
  };
}

/** One tRPC mutation on a socket authenticated at the upgrade. */
async function call(ws: WebSocket, path: string, input: unknown): Promise<Record<string, unknown>> {
  const id = Math.floor(Math.random() * 1e9);
  ws.send(
    JSON.stringify({ id, method: 'mutation', params: { path, input: superjson.serialize(input) } }),
  );
  for (;;) {
    const [data] = (await once(ws, 'message')) as [Buffer];
    const text = data.toString('utf8');
    if (text === 'PING') continue;
    const message = JSON.parse(text) as { id?: number } & Record<string, unknown>;
    if (message.id === id) return message;
  }
}

interface Attached {
  owner: ParticipantActor;
  node: NodeActor;
  sessionId: SessionId;
  attachmentId: string;
  claim: ResumeClaim;
}

/** A node attached (online, with capabilities) over HTTP, as a previous connection left it. */
async function attachedNode(server: TestServer): Promise<Attached> {
  const owner = await participant(server);
  const node = await nodeOf(server, owner);
  const sessionId = await sessionOf(server, owner);
  const attached = await mutate<{ attachmentId: string }>(
    server.url,
    'runtimenode.attach',
    {
      sessionId,
      participantId: owner.participantId,
      nodeId: node.nodeId,
      nodeVersion: '2.0',
      capabilities: CAPABILITIES,
      healthState: 'online',
    },
    { token: node.token },
  );
  expect(attached.status).toBe(200);
  const declared = await mutate(
    server.url,
    'runtimenode.capabilityupdate',
    { nodeId: node.nodeId, capabilities: CAPABILITIES, healthChanges: { state: 'online' } },
    { token: node.token },
  );
  expect(declared.status).toBe(200);
  // Its socket is gone: presence offline, as after a server restart.
  await server.db.query(
    `UPDATE runtime_node_presence SET health_state = 'offline', connection_id = NULL, online_since = NULL WHERE node_id = $1`,
    [node.nodeId],
  );
  return {
    owner,
    node,
    sessionId,
    attachmentId: attached.data.attachmentId,
    claim: {
      attachmentId: attached.data.attachmentId as ResumeClaim['attachmentId'],
      sessionId,
      nodeVersion: '2.0' as ResumeClaim['nodeVersion'],
      capabilitiesDigest: capabilitiesDigest(CAPABILITIES),
      healthState: 'online',
    },
  };
}

async function presenceOf(server: TestServer, nodeId: string) {
  const { rows } = await server.db.query<{ health_state: string; connection_id: string | null }>(
    `SELECT health_state, connection_id FROM runtime_node_presence WHERE node_id = $1`,
    [nodeId],
  );
  return rows[0]!;
}

async function eventsOf(server: TestServer, nodeId: string, afterId: number) {
  const { rows } = await server.db.query<{
    id: string;
    type: string;
    payload: Record<string, unknown>;
  }>(`SELECT id, type, payload FROM fleet_events WHERE node_id = $1 AND id > $2 ORDER BY id`, [
    nodeId,
    afterId,
  ]);
  return rows.map((r) => ({ type: r.type, payload: r.payload }));
}

async function headEventId(server: TestServer): Promise<number> {
  const { rows } = await server.db.query<{ id: string | null }>(
    `SELECT max(id) AS id FROM fleet_events`,
  );
  return Number(rows[0]!.id ?? 0);
}

const handshakes = (server: TestServer, result: string): Promise<number> =>
  metricSample(server.url, `tether_ws_handshakes_total{result="${result}"}`);

describe('resume in the WebSocket handshake', () => {
  it('resumes the same attachment at the upgrade: presence online on the new socket, one presence event, no attach', async () => {
    await using server = await startTestServer();
    const a = await attachedNode(server);
    const before = await headEventId(server);

    const up = await upgrade(server, headersFor(a.node, a.claim));
    expect(up.kind).toBe('open');
    if (up.kind !== 'open') return;
    expect(up.answer).toMatchObject({
      resumed: true,
      state: 'online',
      readOnly: false,
      contractVersion: CONTRACT_VERSION,
      heartbeatIntervalMs: server.config.heartbeatIntervalMs,
    });
    expect(up.answer?.reason).toBeUndefined();
    // Bound before the 101: online on a connection, with exactly the events of what changed.
    const presence = await presenceOf(server, a.node.nodeId);
    expect(presence.health_state).toBe('online');
    expect(presence.connection_id).not.toBeNull();
    expect(await eventsOf(server, a.node.nodeId, before)).toEqual([
      { type: 'presence.changed', payload: { from: 'offline', to: 'online', cause: 'connection' } },
    ]);
    const { rows } = await server.db.query<{ id: string; state: string }>(
      `SELECT id, state FROM runtime_node_attachments WHERE node_id = $1`,
      [a.node.nodeId],
    );
    expect(rows).toEqual([{ id: a.attachmentId, state: 'online' }]);
    expect(await handshakes(server, 'resumed')).toBe(1);

    // The socket is authenticated without connectionParams: it beats at once.
    const beat = await call(up.ws, 'runtimenode.heartbeat', {
      nodeId: a.node.nodeId,
      healthState: 'online',
    });
    expect(beat.error).toBeUndefined();
    expect(
      await metricSample(
        server.url,
        'tether_rpc_requests_total{procedure="runtimenode.attach",code="ok",transport="ws"}',
      ),
    ).toBe(0);

    // Closing it releases the binding the resume made.
    up.ws.close();
    await eventually(
      () => presenceOf(server, a.node.nodeId),
      (p) => p.health_state === 'offline',
    );
  });

  it('a claimed health different from the attachment state moves it, with its state_changed event', async () => {
    await using server = await startTestServer();
    const a = await attachedNode(server);
    const before = await headEventId(server);
    const up = await upgrade(server, headersFor(a.node, { ...a.claim, healthState: 'degraded' }));
    expect(up.kind === 'open' && up.answer).toMatchObject({ resumed: true, state: 'degraded' });
    expect(await eventsOf(server, a.node.nodeId, before)).toEqual([
      {
        type: 'presence.changed',
        payload: { from: 'offline', to: 'degraded', cause: 'connection' },
      },
      {
        type: 'runtimenode.state_changed',
        payload: { from: 'online', to: 'degraded', reason: null },
      },
    ]);
    if (up.kind === 'open') up.ws.close();
  });

  it('not resumed when something differs: capabilities, ended attachment, session, version, floor', async () => {
    await using server = await startTestServer();
    const cases: [string, (a: Attached) => Promise<ResumeClaim>][] = [
      [
        'capabilities_changed',
        (a) =>
          Promise.resolve({ ...a.claim, capabilitiesDigest: capabilitiesDigest({ other: {} }) }),
      ],
      [
        'attachment_ended',
        async (a) => {
          await mutate(
            server.url,
            'runtimenode.detach',
            { nodeId: a.node.nodeId },
            { token: a.node.token },
          );
          return a.claim;
        },
      ],
      [
        'session_mismatch',
        async (a) => ({ ...a.claim, sessionId: await sessionOf(server, a.owner) }),
      ],
      [
        'version_changed',
        (a) => Promise.resolve({ ...a.claim, nodeVersion: '2.1' as ResumeClaim['nodeVersion'] }),
      ],
      [
        'floor_raised',
        async (a) => {
          const raised = await mutate(
            server.url,
            'session.raiseFloor',
            { sessionId: a.sessionId, minNodeVersion: '3.0' },
            { token: a.owner.token },
          );
          expect(raised.status).toBe(200);
          return a.claim;
        },
      ],
    ];
    for (const [reason, prepare] of cases) {
      const a = await attachedNode(server);
      const claim = await prepare(a);
      const { rows: stateBefore } = await server.db.query<{ state: string }>(
        `SELECT state FROM runtime_node_attachments WHERE id = $1`,
        [a.attachmentId],
      );
      const up = await upgrade(server, headersFor(a.node, claim));
      expect(up.kind, reason).toBe('open');
      if (up.kind !== 'open') continue;
      expect(up.answer, reason).toMatchObject({ resumed: false, reason, state: null });
      expect(await handshakes(server, `not_resumed:${reason}`), reason).toBe(1);
      // The attachment is left as it was (the node attaches next).
      const { rows: stateAfter } = await server.db.query<{ state: string }>(
        `SELECT state FROM runtime_node_attachments WHERE id = $1`,
        [a.attachmentId],
      );
      expect(stateAfter, reason).toEqual(stateBefore);
      // Still a working, authenticated socket: presence follows it as before.
      await eventually(
        () => presenceOf(server, a.node.nodeId),
        (p) => p.health_state === 'online',
      );
      up.ws.close();
    }
  });

  it("a claim for another node's attachment resumes nothing and leaves that node alone", async () => {
    await using server = await startTestServer();
    const victim = await attachedNode(server);
    const intruder = await nodeOf(server, victim.owner);
    const up = await upgrade(server, headersFor(intruder, victim.claim));
    expect(up.kind === 'open' && up.answer).toMatchObject({
      resumed: false,
      reason: 'attachment_ended',
    });
    const presence = await presenceOf(server, victim.node.nodeId);
    expect(presence).toEqual({ health_state: 'offline', connection_id: null });
    if (up.kind === 'open') up.ws.close();
  });

  it('an unknown or revoked credential is refused at the upgrade with 401, audited, nothing bound', async () => {
    await using server = await startTestServer();
    const a = await attachedNode(server);
    const revoked = await mutate(
      server.url,
      'node.revoke',
      { nodeId: a.node.nodeId },
      { token: a.owner.token },
    );
    expect(revoked.status).toBe(200);
    for (const token of [a.node.token, 'tnd_unknown-token-0000000000000000000000']) {
      const up = await upgrade(server, {
        ...headersFor(a.node, a.claim),
        authorization: `Bearer ${token}`,
      });
      expect(up.kind).toBe('refused');
      if (up.kind !== 'refused') continue;
      expect(up.status).toBe(401);
      const body = JSON.parse(up.body) as { error: { data: { tetherError: { code: string } } } };
      expect(body.error.data.tetherError.code).toBe('auth.unauthenticated');
    }
    expect(await handshakes(server, 'refused_401')).toBe(2);
    expect(await presenceOf(server, a.node.nodeId)).toEqual({
      health_state: 'offline',
      connection_id: null,
    });
    expect(server.logs()).toContain('"action":"auth.failed"');
    expect(server.logs()).not.toContain(a.node.token);
  });

  it("rejected credentials at the upgrade draw on the address's auth-failure budget: 429 once it is empty", async () => {
    await using server = await startTestServer({
      env: { TETHER_RATE_AUTH_FAILURES_PER_MINUTE: '2' },
    });
    const a = await attachedNode(server);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const up = await upgrade(server, {
        ...headersFor(a.node),
        authorization: 'Bearer tnd_guessed-token-000000000000000000000000',
      });
      statuses.push(up.kind === 'refused' ? up.status : 101);
    }
    expect(statuses).toEqual([401, 401, 429]);
    // A valid credential from the same address is not refused for others' failures.
    const up = await upgrade(server, headersFor(a.node, a.claim));
    expect(up.kind === 'open' && up.answer?.resumed).toBe(true);
    if (up.kind === 'open') up.ws.close();
  });

  it('a garbage resume header is a typed 400 refusal', async () => {
    await using server = await startTestServer();
    const a = await attachedNode(server);
    for (const claim of ['!!!not-base64!!!', encodeHeaderJson({ attachmentId: 'nope' })]) {
      const up = await upgrade(server, headersFor(a.node, claim));
      expect(up.kind).toBe('refused');
      if (up.kind !== 'refused') continue;
      expect(up.status).toBe(400);
      const body = JSON.parse(up.body) as { error: { data: { tetherError: { code: string } } } };
      expect(body.error.data.tetherError.code).toBe('request.invalid');
    }
    // The server keeps serving: the same node resumes right after.
    const up = await upgrade(server, headersFor(a.node, a.claim));
    expect(up.kind === 'open' && up.answer?.resumed).toBe(true);
    if (up.kind === 'open') up.ws.close();
  });

  it('upgrades that arrive together are decided in one batch', async () => {
    await using server = await startTestServer();
    const nodes = await Promise.all(Array.from({ length: 12 }, () => attachedNode(server)));
    const ups = await Promise.all(nodes.map((a) => upgrade(server, headersFor(a.node, a.claim))));
    for (const up of ups) expect(up.kind === 'open' && up.answer?.resumed).toBe(true);
    const count = await metricSample(server.url, 'tether_ws_upgrade_batch_size_count');
    const sum = await metricSample(server.url, 'tether_ws_upgrade_batch_size_sum');
    expect(sum).toBe(12);
    // Fewer batches than upgrades: at least one batch held more than one.
    expect(count).toBeLessThan(sum);
    for (const up of ups) if (up.kind === 'open') up.ws.close();
  });

  it('the connectionParams path is unchanged: no handshake header, presence bound as before', async () => {
    await using server = await startTestServer();
    const a = await attachedNode(server);
    const ws = new WebSocket(`${server.wsUrl}?connectionParams=1`);
    let handshake: unknown = 'unset';
    ws.once('upgrade', (res) => (handshake = res.headers['x-tether-handshake']));
    await once(ws, 'open');
    ws.on('message', (d: Buffer) => d.toString() === 'PING' && ws.send('PONG'));
    ws.send(
      JSON.stringify({
        method: 'connectionParams',
        data: { token: a.node.token, clientVersion: CONTRACT_VERSION },
      }),
    );
    expect(handshake).toBeUndefined();
    await eventually(
      () => presenceOf(server, a.node.nodeId),
      (p) => p.health_state === 'online',
    );
    ws.close();
  });
});
