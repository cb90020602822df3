/**
 * Restart at any step loses nothing: enroll, pair (pending, approved, claimed), attach, then stop
 * the real server process (SIGTERM, and kill -9) and start it again on the same database.
 */
import type { SessionId } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { mutate, query } from '../http.js';
import { spawnServer } from '../process-server.js';
import { fastPresenceEnv } from '../server.js';

const ADMIN = 'tpt_restart-test-bootstrap-admin-token-0001';

async function seed(url: string) {
  const as = { token: ADMIN };
  const session = await mutate<{ sessionId: SessionId }>(
    url,
    'session.create',
    { name: 'plant floor' },
    as,
  );
  const member = await mutate<{ participantId: string; token: string }>(
    url,
    'participant.create',
    { name: 'op', role: 'member' },
    as,
  );
  await mutate(
    url,
    'membership.add',
    {
      sessionId: session.data.sessionId,
      participantId: member.data.participantId,
      role: 'collaborator',
    },
    as,
  );
  const key = await mutate<{ enrollmentKey: string }>(
    url,
    'enrollment.createKey',
    { reusable: true },
    as,
  );
  const enrolled = await mutate<{ nodeId: string; nodeToken: string; ownerParticipantId: string }>(
    url,
    'device.enroll',
    {
      enrollmentKey: key.data.enrollmentKey,
      nodeId: 'press-7',
      name: 'Press 7',
      nodeType: 'edge',
    },
  );
  expect(enrolled.status).toBe(200);
  const attached = await mutate<{ attachmentId: string }>(
    url,
    'runtimenode.attach',
    {
      sessionId: session.data.sessionId,
      participantId: enrolled.data.ownerParticipantId,
      nodeId: 'press-7',
      nodeVersion: '1.0',
      capabilities: { plc: {} },
      healthState: 'online',
    },
    { token: enrolled.data.nodeToken },
  );
  expect(attached.status).toBe(200);
  const beat = await mutate(
    url,
    'runtimenode.heartbeat',
    { nodeId: 'press-7', healthState: 'online' },
    { token: enrolled.data.nodeToken },
  );
  expect(beat.status).toBe(200);

  const pending = await mutate<{ requestId: string; pairingCode: string; claimSecret: string }>(
    url,
    'pairing.request',
    { name: 'Laptop', nodeType: 'desktop' },
  );
  const approved = await mutate<{ requestId: string; claimSecret: string }>(
    url,
    'pairing.request',
    { name: 'Kiosk', nodeType: 'desktop' },
  );
  expect(
    (await mutate(url, 'pairing.approve', { requestId: approved.data.requestId }, as)).status,
  ).toBe(200);
  const claimed = await mutate<{ requestId: string; claimSecret: string }>(url, 'pairing.request', {
    name: 'Gateway',
    nodeType: 'gateway',
  });
  await mutate(url, 'pairing.approve', { requestId: claimed.data.requestId }, as);
  const claim = await mutate<{ state: string; nodeId: string; nodeToken: string }>(
    url,
    'pairing.claim',
    { requestId: claimed.data.requestId, claimSecret: claimed.data.claimSecret },
  );
  expect(claim.data.state).toBe('approved');

  return {
    sessionId: session.data.sessionId,
    member: member.data,
    node: enrolled.data,
    pending: pending.data,
    approved: approved.data,
    claimedNode: claim.data,
  };
}

async function verify(url: string, seeded: Awaited<ReturnType<typeof seed>>) {
  const as = { token: ADMIN };
  // Identities, sessions and memberships.
  expect(
    (
      await query(
        url,
        'session.get',
        { sessionId: seeded.sessionId },
        { token: seeded.member.token },
      )
    ).status,
  ).toBe(200);
  const members = await query<{ items: { role: string }[] }>(
    url,
    'membership.list',
    { sessionId: seeded.sessionId },
    as,
  );
  expect(members.data.items.map((m) => m.role).sort()).toEqual(['collaborator', 'owner']);
  // Attachment intact; presence reported, never invented.
  const roster = await query<{ nodes: { nodeId: string; state: string; healthState: string }[] }>(
    url,
    'runtimenode.roster',
    { sessionId: seeded.sessionId },
    as,
  );
  expect(roster.data.nodes.map((n) => [n.nodeId, n.state])).toEqual([['press-7', 'registering']]);
  // Pairings: pending stays pending, approved can still be claimed exactly once, claimed stays claimed.
  const list = await query<{ items: { requestId: string; state: string }[] }>(
    url,
    'pairing.list',
    {},
    as,
  );
  const stateOf = (id: string) => list.data.items.find((i) => i.requestId === id)?.state;
  expect(stateOf(seeded.pending.requestId)).toBe('pending');
  expect(stateOf(seeded.approved.requestId)).toBe('approved');
  const late = await mutate<{ state: string; nodeToken?: string }>(url, 'pairing.claim', {
    requestId: seeded.approved.requestId,
    claimSecret: seeded.approved.claimSecret,
  });
  expect(late.data.state).toBe('approved');
  expect(late.data.nodeToken).toMatch(/^tnd_/);
  // Tokens issued before the restart still work.
  for (const [nodeId, token] of [
    [seeded.node.nodeId, seeded.node.nodeToken],
    [seeded.claimedNode.nodeId, seeded.claimedNode.nodeToken],
  ]) {
    const r = await mutate(
      url,
      'runtimenode.heartbeat',
      { nodeId, healthState: 'online' },
      { token },
    );
    expect(r.status, nodeId).toBe(200);
  }
}

describe('restart loses nothing', () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`${signal}: identities, pairings, sessions, memberships and attachments survive; stale presence goes offline until a beat`, async () => {
      const database = await createTestDatabase();
      const env = {
        DATABASE_URL: database.url,
        TETHER_BOOTSTRAP_TOKEN: ADMIN,
        ...fastPresenceEnv(400),
      };
      try {
        const first = await spawnServer(env);
        const seeded = await seed(first.url);
        first.child.kill(signal);
        const exit = await first.exited;
        expect(exit, first.output().slice(-3000)).toBe(signal === 'SIGTERM' ? 0 : 'SIGKILL');
        if (signal === 'SIGTERM') expect(first.output()).toContain('shutdown complete');

        const second = await spawnServer(env);
        try {
          // Without beats, the node's presence is demoted by the sweep (nobody invents liveness)...
          const offline = await eventually(
            () =>
              query<{ online: boolean; healthState: string }>(
                second.url,
                'node.isOnline',
                { nodeId: 'press-7' },
                { token: ADMIN },
              ),
            (r) => r.data?.healthState === 'offline',
          );
          expect(offline.data.online).toBe(false);
          await verify(second.url, seeded);
          // ...and a beat brings it back.
          const after = await query<{ online: boolean }>(
            second.url,
            'node.isOnline',
            { nodeId: 'press-7' },
            { token: ADMIN },
          );
          expect(after.data.online).toBe(true);
        } finally {
          second.child.kill('SIGTERM');
          await second.exited;
        }
      } finally {
        await database.drop();
      }
    });
  }
});
