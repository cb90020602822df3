/**
 * P1–P10 through the wire: a node calling with its own token over real HTTP. The rules' refusals
 * that the error-code table already produces the same way (P4 version.floor_exceeded, P9
 * attach_conflict, P10 attach_revoked, capabilityupdate_conflict, session.floor_not_monotonic:
 * error-cases.ts, over tRPC and REST) are asserted there; this file proves the rest of each
 * rule. Every rule is proven at the service level too (test/runtime-nodes/, sessions.test.ts).
 */
import type { SessionId } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, query } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, sessionOf, type NodeActor, type ParticipantActor } from './actors.js';

function attachBody(
  node: NodeActor,
  sessionId: SessionId,
  nodeVersion = '1.0',
  capabilities: object = { gpu: {} },
) {
  return {
    sessionId,
    participantId: node.ownerParticipantId,
    nodeId: node.nodeId,
    nodeVersion,
    capabilities,
    healthState: 'online',
  };
}

const attach = (s: TestServer, n: NodeActor, body: object) =>
  mutate<{ state: string; readOnly: boolean; attachmentId: string; attachedAt: string }>(
    s.url,
    'runtimenode.attach',
    body,
    { token: n.token },
  );

async function addMember(
  s: TestServer,
  owner: ParticipantActor,
  sessionId: SessionId,
  member: ParticipantActor,
  role: string,
) {
  const r = await mutate(
    s.url,
    'membership.add',
    { sessionId, participantId: member.participantId, role },
    { token: owner.token },
  );
  expect(r.status).toBe(200);
}

describe('runtime-node rules over HTTP', () => {
  it('P1 NULL floor admits all; P2 at/above floor read-write; P3 below floor read-only (numeric)', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const open = await sessionOf(server, owner);
    const floored = await sessionOf(server, owner, '1.10');
    const cases: [SessionId, string, boolean][] = [
      [open, '0.1', false],
      [floored, '1.10', false],
      [floored, '2.0', false],
      [floored, '1.9', true],
    ];
    for (const [sessionId, version, readOnly] of cases) {
      const node = await nodeOf(server, owner);
      const r = await attach(server, node, attachBody(node, sessionId, version));
      expect({ version, status: r.status, state: r.data.state, readOnly: r.data.readOnly }).toEqual(
        {
          version,
          status: 200,
          state: 'registering',
          readOnly,
        },
      );
    }
  });

  it('P4 a read-only node may still beat; the roster shows it read-only', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const session = await sessionOf(server, owner, '2.0');
    const node = await nodeOf(server, owner);
    await attach(server, node, attachBody(node, session, '1.5'));
    const beat = await mutate(
      server.url,
      'runtimenode.heartbeat',
      { nodeId: node.nodeId, healthState: 'online' },
      { token: node.token },
    );
    expect(beat.status).toBe(200);
    const roster = await query<{ nodes: { state: string; readOnly: boolean }[] }>(
      server.url,
      'runtimenode.roster',
      { sessionId: session },
      { token: owner.token },
    );
    expect(roster.data.nodes).toEqual([
      expect.objectContaining({ state: 'registering', readOnly: true }),
    ]);
  });

  it('P5 many nodes in one session; P7 memberships untouched; roster shows both axes', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const contributor = await participant(server);
    const session = await sessionOf(server, owner);
    await addMember(server, owner, session, contributor, 'runtime contributor');
    const before = await query<{ items: unknown[] }>(
      server.url,
      'membership.list',
      { sessionId: session },
      { token: owner.token },
    );
    const nodes = await Promise.all(Array.from({ length: 5 }, () => nodeOf(server, contributor)));
    for (const n of nodes)
      expect((await attach(server, n, attachBody(n, session))).status).toBe(200);
    const after = await query<{ items: unknown[] }>(
      server.url,
      'membership.list',
      { sessionId: session },
      { token: owner.token },
    );
    expect(after.data).toEqual(before.data);
    const roster = await query<{
      nodes: { nodeId: string; healthState: string; lastHeartbeatAt: string | null }[];
    }>(server.url, 'runtimenode.roster', { sessionId: session }, { token: contributor.token });
    expect(roster.data.nodes.map((n) => n.nodeId).sort()).toEqual(
      nodes.map((n) => n.nodeId).sort(),
    );
    expect(
      roster.data.nodes.every((n) => n.healthState === 'online' && n.lastHeartbeatAt !== null),
    ).toBe(true);
  });

  it('P6 a heartbeat shows in node.isOnline and the roster; P8 detach is idempotent and sets offline', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const session = await sessionOf(server, owner);
    const node = await nodeOf(server, owner);
    await attach(server, node, attachBody(node, session));
    const isOnline = async () => {
      const r = await query<{
        online: boolean;
        healthState: string;
        lastHeartbeatAt: Date | null;
      }>(server.url, 'node.isOnline', { nodeId: node.nodeId }, { token: owner.token });
      expect(r.status).toBe(200);
      return r.data;
    };
    const roster = async () =>
      (
        await query<{
          nodes: { state: string; healthState: string; lastHeartbeatAt: Date | null }[];
        }>(server.url, 'runtimenode.roster', { sessionId: session }, { token: owner.token })
      ).data.nodes;
    const attached = await isOnline();
    expect(attached).toMatchObject({ online: true, healthState: 'online' });

    // The node reports itself degraded: both reads show the beat (state and the database's time).
    const beat = await mutate(
      server.url,
      'runtimenode.heartbeat',
      { nodeId: node.nodeId, healthState: 'degraded' },
      { token: node.token },
    );
    expect([beat.status, beat.data]).toEqual([200, null]);
    const afterBeat = await isOnline();
    expect(afterBeat).toMatchObject({ online: true, healthState: 'degraded' });
    expect(afterBeat.lastHeartbeatAt!.getTime()).toBeGreaterThan(
      attached.lastHeartbeatAt!.getTime(),
    );
    expect(await roster()).toEqual([
      expect.objectContaining({
        state: 'registering',
        healthState: 'degraded',
        lastHeartbeatAt: afterBeat.lastHeartbeatAt,
      }),
    ]);

    for (let i = 0; i < 3; i++) {
      const d = await mutate(
        server.url,
        'runtimenode.detach',
        { nodeId: node.nodeId, reason: 'bye' },
        { token: node.token },
      );
      expect([d.status, d.data]).toEqual([200, null]);
    }
    expect(await roster()).toEqual([
      expect.objectContaining({ state: 'offline', healthState: 'offline' }),
    ]);
    expect(await isOnline()).toMatchObject({ online: false, healthState: 'offline' });
  });

  it('P9 after detach, re-attaching to the same session reactivates its attachment', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const a = await sessionOf(server, owner);
    const node = await nodeOf(server, owner);
    const first = await attach(server, node, attachBody(node, a));
    await mutate(server.url, 'runtimenode.detach', { nodeId: node.nodeId }, { token: node.token });
    const again = await attach(server, node, attachBody(node, a));
    expect([again.data.attachmentId, again.data.attachedAt, again.data.state]).toEqual([
      first.data.attachmentId,
      first.data.attachedAt,
      'registering',
    ]);
  });

  it('P10 after its attachment in one session is revoked, other sessions still accept the node', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const [a, b] = [await sessionOf(server, owner), await sessionOf(server, owner)];
    const node = await nodeOf(server, owner);
    await attach(server, node, attachBody(node, a));
    const revoke = await mutate(
      server.url,
      'runtimenode.revoke',
      { sessionId: a, nodeId: node.nodeId },
      { token: owner.token },
    );
    expect(revoke.status).toBe(200);
    expect((await attach(server, node, attachBody(node, b))).status).toBe(200);
  });

  it('registering → online with capabilities', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const session = await sessionOf(server, owner);
    const node = await nodeOf(server, owner);
    await attach(server, node, attachBody(node, session, '1.0', {}));
    const ok = await mutate<{ state: string; updatedAt: string }>(
      server.url,
      'runtimenode.capabilityupdate',
      { nodeId: node.nodeId, capabilities: { shell: {} }, healthChanges: { state: 'online' } },
      { token: node.token },
    );
    expect(ok.data.state).toBe('online');
  });

  it('attaching to a session its owner is not a member of → runtimenode.permission_denied 403', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const stranger = await participant(server);
    const session = await sessionOf(server, owner, '1.5');
    const node = await nodeOf(server, stranger);
    const denied = await attach(server, node, attachBody(node, session));
    expect([denied.status, errorCode(denied)]).toEqual([403, 'runtimenode.permission_denied']);
  });
});

describe('security over HTTP', () => {
  it('node A cannot heartbeat, detach or update node B (auth.principal_mismatch 403)', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const session = await sessionOf(server, owner);
    const a = await nodeOf(server, owner);
    const b = await nodeOf(server, owner);
    await attach(server, b, attachBody(b, session));
    const calls = [
      mutate(
        server.url,
        'runtimenode.heartbeat',
        { nodeId: b.nodeId, healthState: 'online' },
        { token: a.token },
      ),
      mutate(server.url, 'runtimenode.detach', { nodeId: b.nodeId }, { token: a.token }),
      mutate(
        server.url,
        'runtimenode.capabilityupdate',
        { nodeId: b.nodeId, capabilities: {} },
        { token: a.token },
      ),
      mutate(
        server.url,
        'runtimenode.attach',
        { ...attachBody(a, session), nodeId: b.nodeId },
        { token: a.token },
      ),
    ];
    for (const r of await Promise.all(calls))
      expect([r.status, errorCode(r)]).toEqual([403, 'auth.principal_mismatch']);
    const roster = await query<{ nodes: { state: string }[] }>(
      server.url,
      'runtimenode.roster',
      { sessionId: session },
      { token: owner.token },
    );
    expect(roster.data.nodes).toEqual([expect.objectContaining({ state: 'registering' })]);
  });

  it('a participant cannot read the roster of a session they are not in (403) nor see the session (404)', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const stranger = await participant(server);
    const session = await sessionOf(server, owner);
    const roster = await query(
      server.url,
      'runtimenode.roster',
      { sessionId: session },
      { token: stranger.token },
    );
    expect([roster.status, errorCode(roster)]).toEqual([403, 'runtimenode.permission_denied']);
    const get = await query(
      server.url,
      'session.get',
      { sessionId: session },
      { token: stranger.token },
    );
    expect([get.status, errorCode(get)]).toEqual([404, 'session.not_found']);
    const list = await query<{ items: unknown[] }>(
      server.url,
      'session.list',
      {},
      { token: stranger.token },
    );
    expect(list.data.items).toEqual([]);
  });

  it('a member cannot call admin procedures (auth.forbidden 403)', async () => {
    await using server = await startTestServer();
    const member = await participant(server);
    const r = await mutate(
      server.url,
      'participant.create',
      { name: 'x', role: 'admin' },
      { token: member.token },
    );
    expect([r.status, errorCode(r)]).toEqual([403, 'auth.forbidden']);
  });

  it('tokens never appear in logs or error messages', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const created = await mutate<{ token: string }>(
      server.url,
      'participant.create',
      { name: 'ops', role: 'member' },
      { token: server.adminToken },
    );
    const bad = await mutate(
      server.url,
      'runtimenode.heartbeat',
      { nodeId: 'other', healthState: 'online' },
      { token: node.token },
    );
    const unauth = await mutate(
      server.url,
      'runtimenode.heartbeat',
      { nodeId: 'other', healthState: 'online' },
      { token: `${node.token}x` },
    );
    const secrets = [
      owner.token,
      node.token,
      created.data.token,
      server.adminToken,
      `${node.token}x`,
    ];
    const logs = server.logs();
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of secrets) {
      expect(logs).not.toContain(secret);
      expect(bad.raw).not.toContain(secret);
      expect(unauth.raw).not.toContain(secret);
    }
    const { rows } = await server.db.query<{ t: string }>(
      `SELECT row_to_json(x)::text AS t FROM api_tokens x`,
    );
    for (const secret of secrets) expect(rows.map((r) => r.t).join('')).not.toContain(secret);
  });
});
