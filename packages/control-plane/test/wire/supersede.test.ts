/**
 * A stale attachment never blocks its own node, through the wire: a node whose old process is
 * gone supersedes its own attachment to another session when it attaches; a live one (a second
 * copy of the node connected) is still refused with attach_conflict, saying which and that it is
 * live; racing attaches leave exactly one active; owners and admins end an attachment with the
 * non-terminal node.detach, and the node attaches again afterwards.
 */
import type { SessionId } from '@tether/contracts';
import { TRPCClientError } from '@trpc/client';
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { errorCode, mutate, query } from '../http.js';
import { rest } from '../rest.js';
import { startTestServer, type TestServer } from '../server.js';
import {
  nodeOf,
  participant,
  rosterStates,
  sessionOf,
  wsClient,
  type NodeActor,
  type ParticipantActor,
} from './actors.js';

function attachBody(node: NodeActor, sessionId: SessionId) {
  return {
    sessionId,
    participantId: node.ownerParticipantId,
    nodeId: node.nodeId,
    nodeVersion: '2.0',
    capabilities: { gpu: {} },
    healthState: 'online' as const,
  };
}

interface Attached {
  attachmentId: string;
  state: string;
  superseded?: { attachmentId: string; sessionId: string };
}

const httpAttach = (s: TestServer, n: NodeActor, sessionId: SessionId) =>
  mutate<Attached>(s.url, 'runtimenode.attach', attachBody(n, sessionId), { token: n.token });

async function rosterState(
  s: TestServer,
  viewer: ParticipantActor,
  sessionId: SessionId,
  nodeId: string,
): Promise<string | undefined> {
  return (await rosterStates(s, viewer, sessionId)).get(nodeId);
}

async function activeAttachments(s: TestServer, nodeId: string): Promise<string[]> {
  const { rows } = await s.db.query<{ session_id: string }>(
    `SELECT session_id FROM runtime_node_attachments
      WHERE node_id = $1 AND state IN ('registering', 'online', 'degraded')`,
    [nodeId],
  );
  return rows.map((r) => r.session_id);
}

async function detachedEvents(s: TestServer, viewer: ParticipantActor, nodeId: string) {
  const r = await query<{
    items: { type: string; sessionId: string | null; data: Record<string, unknown> }[];
  }>(
    s.url,
    'fleet.list',
    { filter: { nodeId, types: ['runtimenode.detached'] } },
    { token: viewer.token },
  );
  expect(r.status).toBe(200);
  return r.data.items;
}

async function presenceOf(s: TestServer, viewer: ParticipantActor, nodeId: string) {
  const r = await query<{ online: boolean; healthState: string }>(
    s.url,
    'node.isOnline',
    { nodeId },
    { token: viewer.token },
  );
  expect(r.status).toBe(200);
  return r.data;
}

/** The node attached to `sessionId` on a socket that then went away (its process is gone). */
async function staleAttachment(
  s: TestServer,
  owner: ParticipantActor,
  node: NodeActor,
  sessionId: SessionId,
): Promise<string> {
  const old = wsClient(s, { token: node.token });
  await old.opened;
  const attached = await old.client.runtimenode.attach.mutate(attachBody(node, sessionId));
  await old.close();
  await eventually(
    () => presenceOf(s, owner, node.nodeId),
    (p) => p.healthState === 'offline',
  );
  return attached.attachmentId;
}

describe('a stale attachment never blocks its own node', () => {
  it('a restarted node supersedes its own stale attachment to S1 and attaches to S2; the events say so', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const [s1, s2] = [await sessionOf(server, owner), await sessionOf(server, owner)];
    const node = await nodeOf(server, owner);
    const oldId = await staleAttachment(server, owner, node, s1);

    const restarted = wsClient(server, { token: node.token });
    try {
      await restarted.opened;
      const attached = await restarted.client.runtimenode.attach.mutate(attachBody(node, s2));
      expect(attached.superseded).toEqual({ attachmentId: oldId, sessionId: s1 });
      expect(await activeAttachments(server, node.nodeId)).toEqual([s2]);
      expect(await rosterState(server, owner, s1, node.nodeId)).toBe('offline');
      expect(await rosterState(server, owner, s2, node.nodeId)).toBe('registering');
      const events = await detachedEvents(server, owner, node.nodeId);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        sessionId: s1,
        data: {
          previousState: 'registering',
          reason: 'superseded',
          attachmentId: oldId,
          by: { kind: 'node', nodeId: node.nodeId },
          supersededBy: attached.attachmentId,
        },
      });
    } finally {
      await restarted.close();
    }
  });

  it('a live attachment (a second copy of the node connected) is refused with attach_conflict naming it, live', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const [s1, s2] = [await sessionOf(server, owner), await sessionOf(server, owner)];
    const node = await nodeOf(server, owner);
    const first = wsClient(server, { token: node.token });
    const second = wsClient(server, { token: node.token });
    try {
      await first.opened;
      const attached = await first.client.runtimenode.attach.mutate(attachBody(node, s1));
      await second.opened;
      const refused = await second.client.runtimenode.attach.mutate(attachBody(node, s2)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(TRPCClientError);
      const tetherError = (refused as TRPCClientError<never>).data as unknown as {
        tetherError: { code: string; details?: Record<string, unknown> };
      };
      expect(tetherError.tetherError).toMatchObject({
        code: 'runtimenode.attach_conflict',
        details: { attachmentId: attached.attachmentId, sessionId: s1, live: true },
      });
      expect(await activeAttachments(server, node.nodeId)).toEqual([s1]);
      expect(await detachedEvents(server, owner, node.nodeId)).toEqual([]);

      // Over HTTP while the node is online the attachment counts as live too.
      const overHttp = await httpAttach(server, node, s2);
      expect(overHttp.status).toBe(409);
      expect(overHttp.error?.data.tetherError.details).toMatchObject({
        attachmentId: attached.attachmentId,
        live: true,
      });
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('P9 attaches racing to supersede the same stale attachment leave exactly one active', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    for (let round = 0; round < 5; round++) {
      const sessions = [
        await sessionOf(server, owner),
        await sessionOf(server, owner),
        await sessionOf(server, owner),
      ];
      const node = await nodeOf(server, owner);
      const oldId = await staleAttachment(server, owner, node, sessions[0]!);
      const results = await Promise.all(
        sessions.slice(1).map((sessionId) => httpAttach(server, node, sessionId)),
      );
      const won = results.filter((r) => r.status === 200);
      const lost = results.filter((r) => r.status !== 200);
      expect(won).toHaveLength(1);
      expect(lost.map(errorCode)).toEqual(['runtimenode.attach_conflict']);
      expect(won[0]!.data.superseded?.attachmentId).toBe(oldId);
      expect(await activeAttachments(server, node.nodeId)).toHaveLength(1);
      const superseded = (await detachedEvents(server, owner, node.nodeId)).filter(
        (e) => e.data.reason === 'superseded',
      );
      expect(superseded).toHaveLength(1);
    }
  });
});

describe('node.detach: owners and admins end an attachment without revoking', () => {
  async function attachedNode(server: TestServer) {
    const owner = await participant(server);
    const [s1, s2] = [await sessionOf(server, owner), await sessionOf(server, owner)];
    const node = await nodeOf(server, owner);
    const first = await httpAttach(server, node, s1);
    expect(first.status).toBe(200);
    return { owner, s1, s2, node, attachmentId: first.data.attachmentId };
  }

  it('the owner detaches; the node stays online and may attach again, here or elsewhere', async () => {
    await using server = await startTestServer();
    const { owner, s1, s2, node, attachmentId } = await attachedNode(server);
    const detached = await mutate(
      server.url,
      'node.detach',
      { nodeId: node.nodeId, reason: 'moving it' },
      { token: owner.token },
    );
    expect(detached.status).toBe(200);
    expect(detached.data).toBeNull();
    expect(await activeAttachments(server, node.nodeId)).toEqual([]);
    expect(await rosterState(server, owner, s1, node.nodeId)).toBe('offline');
    expect((await presenceOf(server, owner, node.nodeId)).online).toBe(true);
    const events = await detachedEvents(server, owner, node.nodeId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      sessionId: s1,
      data: {
        reason: 'moving it',
        attachmentId,
        by: { kind: 'participant', participantId: owner.participantId },
      },
    });
    // Idempotent: nothing active, nothing written.
    const again = await mutate(
      server.url,
      'node.detach',
      { nodeId: node.nodeId },
      { token: owner.token },
    );
    expect(again.status).toBe(200);
    expect(await detachedEvents(server, owner, node.nodeId)).toHaveLength(1);

    // Not terminal: the node attaches again (the same row comes back) and could go elsewhere.
    const back = await httpAttach(server, node, s1);
    expect(back.status).toBe(200);
    expect(back.data.attachmentId).toBe(attachmentId);
    expect(await activeAttachments(server, node.nodeId)).toEqual([s1]);
    await mutate(server.url, 'node.detach', { nodeId: node.nodeId }, { token: owner.token });
    expect((await httpAttach(server, node, s2)).status).toBe(200);
  });

  it('an admin detaches any node, over REST too', async () => {
    await using server = await startTestServer();
    const { owner, node } = await attachedNode(server);
    const admin = await participant(server, 'admin');
    const r = await rest(
      server.url,
      'POST',
      `/nodes/${node.nodeId}/detach`,
      {},
      { token: admin.token },
    );
    expect(r.status).toBe(200);
    expect(await activeAttachments(server, node.nodeId)).toEqual([]);
    const events = await detachedEvents(server, owner, node.nodeId);
    expect(events[0]?.data.by).toEqual({ kind: 'participant', participantId: admin.participantId });
  });

  it('a stranger gets node.not_found as for a missing node; a co-member who does not own it is refused', async () => {
    await using server = await startTestServer();
    const { owner, s1, node } = await attachedNode(server);
    const stranger = await participant(server);
    const strangerCall = await mutate(
      server.url,
      'node.detach',
      { nodeId: node.nodeId },
      { token: stranger.token },
    );
    const missingCall = await mutate(
      server.url,
      'node.detach',
      { nodeId: 'no-such-node' },
      { token: stranger.token },
    );
    expect(strangerCall.status).toBe(404);
    expect(errorCode(strangerCall)).toBe('node.not_found');
    expect(strangerCall.status).toBe(missingCall.status);
    expect(strangerCall.error?.data.tetherError).toEqual(missingCall.error?.data.tetherError);

    // A member of the node's session sees the node but does not own it.
    const member = await participant(server);
    const added = await mutate(
      server.url,
      'membership.add',
      { sessionId: s1, participantId: member.participantId, role: 'collaborator' },
      { token: owner.token },
    );
    expect(added.status).toBe(200);
    const memberCall = await mutate(
      server.url,
      'node.detach',
      { nodeId: node.nodeId },
      { token: member.token },
    );
    expect(memberCall.status).toBe(403);
    expect(errorCode(memberCall)).toBe('auth.forbidden');

    // A node credential is not a participant's.
    const byNode = await mutate(
      server.url,
      'node.detach',
      { nodeId: node.nodeId },
      { token: node.token },
    );
    expect(byNode.status).toBeGreaterThanOrEqual(400);
    expect(await activeAttachments(server, node.nodeId)).toEqual([s1]);
    expect(await detachedEvents(server, owner, node.nodeId)).toEqual([]);
  });
});
