/**
 * The access policy over the real wire: policy.set / policy.get, leases (acquire, renew, release,
 * break, expiry by the sweep), their fleet events, the REST face, refusals and bad input, and a
 * restart (kill -9) that keeps policies and leases.
 */
import type { SessionId } from '@tether/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { errorCode, mutate, query, type CallResult } from '../http.js';
import { spawnServer } from '../process-server.js';
import { rest } from '../rest.js';
import { FAST_PRESENCE_ENV, startTestServer, type TestServer } from '../server.js';
import { acquire, attachedNode, setPolicy, type AttachedNode } from './access-actors.js';
import { participant } from './actors.js';

let server: TestServer;

beforeAll(async () => {
  // The sweep runs every 100 ms: lease expiry is watched, not waited for.
  server = await startTestServer({ env: FAST_PRESENCE_ENV });
});
afterAll(async () => {
  await server?.stop();
});

interface PolicyItem {
  capability: string;
  policy: string;
  explicit: boolean;
  declared: boolean;
  declaredAuthLevel: string | null;
  updatedBy: string | null;
  updatedAt: Date | null;
}

interface Lease {
  leaseId: string;
  nodeId: string;
  capability: string;
  holderParticipantId: string | null;
  heldByCaller: boolean;
  acquiredAt: Date;
  expiresAt: Date;
  endedAt: Date | null;
  endReason: string | null;
}

function details(r: CallResult): Record<string, unknown> | undefined {
  return r.error?.data.tetherError.details;
}

async function eventsOf(nodeId: string, prefix: 'policy.' | 'lease.') {
  const r = await query<{ items: { type: string; data: Record<string, unknown> }[] }>(
    server.url,
    'fleet.list',
    { filter: { nodeId } },
    { token: server.adminToken },
  );
  return r.data.items.filter((e) => e.type.startsWith(prefix));
}

describe('policy.set / policy.get', () => {
  let cast: AttachedNode;
  beforeAll(async () => {
    cast = await attachedNode(server, { arm: { authLevel: 'leased' }, camera: {} });
  });

  it('every declared capability reads as owner-only until a policy is set', async () => {
    const r = await query<{ items: PolicyItem[] }>(
      server.url,
      'policy.get',
      { nodeId: cast.node.nodeId },
      { token: cast.owner.token },
    );
    expect(r.status).toBe(200);
    expect(r.data.items.map((i) => [i.capability, i.policy, i.explicit, i.declared])).toEqual([
      ['arm', 'owner', false, true],
      ['camera', 'owner', false, true],
    ]);
    // The node's declared authLevel is shown as a hint, never applied by itself.
    expect(r.data.items[0]!.declaredAuthLevel).toBe('leased');
  });

  it('the owner sets a policy: stored, returned, read back, and one policy.changed event', async () => {
    const set = await mutate<PolicyItem>(
      server.url,
      'policy.set',
      { nodeId: cast.node.nodeId, capability: 'camera', policy: 'free' },
      { token: cast.owner.token },
    );
    expect(set.status).toBe(200);
    expect(set.data).toMatchObject({
      capability: 'camera',
      policy: 'free',
      explicit: true,
      updatedBy: cast.owner.participantId,
    });
    expect(set.data.updatedAt).toBeInstanceOf(Date);
    // Setting it again changes nothing and writes no event.
    const again = await mutate(
      server.url,
      'policy.set',
      { nodeId: cast.node.nodeId, capability: 'camera', policy: 'free' },
      { token: cast.owner.token },
    );
    expect(again.status).toBe(200);
    const one = await query<{ items: PolicyItem[] }>(
      server.url,
      'policy.get',
      { nodeId: cast.node.nodeId, capability: 'camera' },
      { token: cast.member.token },
    );
    expect(one.data.items).toHaveLength(1);
    expect(one.data.items[0]).toMatchObject({ capability: 'camera', policy: 'free' });
    const events = await eventsOf(cast.node.nodeId, 'policy.');
    expect(events).toEqual([
      expect.objectContaining({
        type: 'policy.changed',
        data: { capability: 'camera', from: 'owner', to: 'free', by: cast.owner.participantId },
      }),
    ]);
  });

  it('an admin may set a policy, also for a capability the node does not declare (yet)', async () => {
    const r = await mutate<PolicyItem>(
      server.url,
      'policy.set',
      { nodeId: cast.node.nodeId, capability: 'printer', policy: 'gated' },
      { token: server.adminToken },
    );
    expect(r.status).toBe(200);
    expect(r.data).toMatchObject({ policy: 'gated', declared: false, explicit: true });
  });

  it('refused: a member (policy.not_owner), a stranger (node.not_found), bad input (request.invalid)', async () => {
    const body = { nodeId: cast.node.nodeId, capability: 'arm', policy: 'free' };
    const byMember = await mutate(server.url, 'policy.set', body, { token: cast.member.token });
    expect([byMember.status, errorCode(byMember)]).toEqual([403, 'policy.not_owner']);
    const stranger = await participant(server);
    const byStranger = await mutate(server.url, 'policy.set', body, { token: stranger.token });
    expect([byStranger.status, errorCode(byStranger)]).toEqual([404, 'node.not_found']);
    const strangerRead = await query(
      server.url,
      'policy.get',
      { nodeId: cast.node.nodeId },
      { token: stranger.token },
    );
    expect(errorCode(strangerRead)).toBe('node.not_found');
    for (const bad of [
      { ...body, policy: 'everyone' },
      { ...body, capability: 'Not A Name' },
      { ...body, extra: true },
      { nodeId: cast.node.nodeId, capability: 'arm' },
    ]) {
      const r = await mutate(server.url, 'policy.set', bad, { token: cast.owner.token });
      expect([r.status, errorCode(r)], JSON.stringify(bad)).toEqual([400, 'request.invalid']);
    }
    // Nothing of that changed the policy.
    const read = await query<{ items: PolicyItem[] }>(
      server.url,
      'policy.get',
      { nodeId: cast.node.nodeId, capability: 'arm' },
      { token: cast.owner.token },
    );
    expect(read.data.items[0]!.policy).toBe('owner');
  });
});

describe('leases', () => {
  let cast: AttachedNode;
  let other: Awaited<ReturnType<typeof participant>>;
  beforeAll(async () => {
    cast = await attachedNode(server);
    other = await participant(server);
    // A second collaborator of the node's session.
    const added = await mutate(
      server.url,
      'membership.add',
      { sessionId: cast.sessionId, participantId: other.participantId, role: 'collaborator' },
      { token: cast.owner.token },
    );
    expect(added.status).toBe(200);
    await setPolicy(server, cast, 'arm', 'leased');
  });

  it('acquire: one holder at a time; the second gets lease.held naming only when it ends', async () => {
    const got = await mutate<Lease>(
      server.url,
      'lease.acquire',
      { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 300 },
      { token: cast.member.token },
    );
    expect(got.status).toBe(200);
    expect(got.data).toMatchObject({
      capability: 'arm',
      heldByCaller: true,
      holderParticipantId: cast.member.participantId,
      endedAt: null,
    });
    expect(got.data.expiresAt.getTime() - got.data.acquiredAt.getTime()).toBe(300_000);

    // Another member: 409 with the expiry, without the holder's identity or the lease id.
    const second = await mutate(
      server.url,
      'lease.acquire',
      { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 60 },
      { token: other.token },
    );
    expect([second.status, errorCode(second)]).toEqual([409, 'lease.held']);
    expect(details(second)).toMatchObject({
      expiresAt: got.data.expiresAt.toISOString(),
      heldByCaller: false,
    });
    expect(details(second)).not.toHaveProperty('holderParticipantId');
    expect(details(second)).not.toHaveProperty('leaseId');
    expect(JSON.stringify(second.error)).not.toContain(cast.member.participantId);

    // The owner is told who holds it.
    const byOwner = await mutate(
      server.url,
      'lease.acquire',
      { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 60 },
      { token: cast.owner.token },
    );
    expect(errorCode(byOwner)).toBe('lease.held');
    expect(details(byOwner)).toMatchObject({
      holderParticipantId: cast.member.participantId,
      leaseId: got.data.leaseId,
    });

    // lease.list: everyone who sees the node sees the lease, the holder named only to the owner.
    const listed = await query<{ items: Lease[] }>(
      server.url,
      'lease.list',
      { nodeId: cast.node.nodeId },
      { token: other.token },
    );
    expect(listed.data.items).toHaveLength(1);
    expect(listed.data.items[0]).toMatchObject({ holderParticipantId: null, heldByCaller: false });
    const listedByOwner = await query<{ items: Lease[] }>(
      server.url,
      'lease.list',
      { nodeId: cast.node.nodeId },
      { token: cast.owner.token },
    );
    expect(listedByOwner.data.items[0]!.holderParticipantId).toBe(cast.member.participantId);

    // Renew: the holder only.
    const byNonHolder = await mutate(
      server.url,
      'lease.renew',
      { leaseId: got.data.leaseId, ttlSeconds: 600 },
      { token: cast.owner.token },
    );
    expect([byNonHolder.status, errorCode(byNonHolder)]).toEqual([403, 'lease.not_holder']);
    const renewed = await mutate<Lease>(
      server.url,
      'lease.renew',
      { leaseId: got.data.leaseId, ttlSeconds: 600 },
      { token: cast.member.token },
    );
    expect(renewed.status).toBe(200);
    expect(renewed.data.expiresAt.getTime()).toBeGreaterThan(got.data.expiresAt.getTime());

    // Release by a member who is not the holder: refused; by the holder: ended, then idempotent.
    const byOther = await mutate(
      server.url,
      'lease.release',
      { leaseId: got.data.leaseId },
      { token: other.token },
    );
    expect(errorCode(byOther)).toBe('lease.not_holder');
    const released = await mutate<Lease>(
      server.url,
      'lease.release',
      { leaseId: got.data.leaseId },
      { token: cast.member.token },
    );
    expect(released.data).toMatchObject({ endReason: 'released' });
    expect(released.data.endedAt).toBeInstanceOf(Date);
    const twice = await mutate<Lease>(
      server.url,
      'lease.release',
      { leaseId: got.data.leaseId },
      { token: cast.member.token },
    );
    expect(twice.data).toMatchObject({ endReason: 'released' });
    const renewEnded = await mutate(
      server.url,
      'lease.renew',
      { leaseId: got.data.leaseId, ttlSeconds: 60 },
      { token: cast.member.token },
    );
    expect([renewEnded.status, errorCode(renewEnded)]).toEqual([409, 'lease.ended']);

    // Free again: the other member takes it, the owner breaks it.
    const taken = await acquire(server, cast.node.nodeId, 'arm', other);
    const broken = await mutate<Lease>(
      server.url,
      'lease.release',
      { leaseId: taken },
      { token: cast.owner.token },
    );
    expect(broken.data).toMatchObject({ endReason: 'broken' });

    const events = await eventsOf(cast.node.nodeId, 'lease.');
    expect(events.map((e) => [e.type, e.data.holder, e.data.broken])).toEqual([
      ['lease.granted', cast.member.participantId, undefined],
      ['lease.renewed', cast.member.participantId, undefined],
      ['lease.released', cast.member.participantId, false],
      ['lease.granted', other.participantId, undefined],
      ['lease.released', other.participantId, true],
    ]);
    expect(events[4]!.data.by).toBe(cast.owner.participantId);
  });

  it('refused: a viewer (policy.not_member), a capability that is not leased, bad ttl and ids', async () => {
    const byViewer = await mutate(
      server.url,
      'lease.acquire',
      { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 60 },
      { token: cast.viewer.token },
    );
    expect([byViewer.status, errorCode(byViewer)]).toEqual([403, 'policy.not_member']);
    const notLeased = await mutate(
      server.url,
      'lease.acquire',
      { nodeId: cast.node.nodeId, capability: 'camera', ttlSeconds: 60 },
      { token: cast.owner.token },
    );
    expect([notLeased.status, errorCode(notLeased)]).toEqual([409, 'lease.not_leased']);
    for (const bad of [
      { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 0 },
      { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 86_401 },
      { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 1.5 },
      { nodeId: cast.node.nodeId, capability: 'arm' },
    ]) {
      const r = await mutate(server.url, 'lease.acquire', bad, { token: cast.owner.token });
      expect([r.status, errorCode(r)], JSON.stringify(bad)).toEqual([400, 'request.invalid']);
    }
    const badId = await mutate(
      server.url,
      'lease.renew',
      { leaseId: 'not-a-uuid', ttlSeconds: 60 },
      { token: cast.owner.token },
    );
    expect(errorCode(badId)).toBe('request.invalid');
    // A stranger learns nothing about a real lease: not found, like an unknown id.
    const leaseId = await acquire(server, cast.node.nodeId, 'arm', cast.owner);
    const stranger = await participant(server);
    const byStranger = await mutate(
      server.url,
      'lease.release',
      { leaseId },
      { token: stranger.token },
    );
    expect([byStranger.status, errorCode(byStranger)]).toEqual([404, 'lease.not_found']);
    await mutate(server.url, 'lease.release', { leaseId }, { token: cast.owner.token });
    // The server keeps serving.
    expect((await query(server.url, 'system.info', {})).status).toBe(200);
  });

  it('a lease past its expiry is ended by the sweep (lease.expired), and the capability is free again', async () => {
    const leaseId = await acquire(server, cast.node.nodeId, 'arm', cast.member, 3600);
    // Age it by the database clock rather than waiting an hour.
    await server.db.query(
      `UPDATE capability_leases SET acquired_at = now() - interval '2 hours',
              expires_at = now() - interval '1 second' WHERE id = $1`,
      [leaseId],
    );
    const expired = await eventually(
      () => eventsOf(cast.node.nodeId, 'lease.'),
      (events) => events.some((e) => e.type === 'lease.expired' && e.data.leaseId === leaseId),
    );
    expect(expired.at(-1)).toMatchObject({
      type: 'lease.expired',
      data: { leaseId, capability: 'arm', holder: cast.member.participantId },
    });
    const { rows } = await server.db.query<{ end_reason: string }>(
      `SELECT end_reason FROM capability_leases WHERE id = $1`,
      [leaseId],
    );
    expect(rows[0]!.end_reason).toBe('expired');
    const listed = await query<{ items: Lease[] }>(
      server.url,
      'lease.list',
      { nodeId: cast.node.nodeId },
      { token: cast.owner.token },
    );
    expect(listed.data.items).toEqual([]);
    const renew = await mutate(
      server.url,
      'lease.renew',
      { leaseId, ttlSeconds: 60 },
      { token: cast.member.token },
    );
    expect(errorCode(renew)).toBe('lease.ended');
    const next = await acquire(server, cast.node.nodeId, 'arm', other);
    expect(next).not.toBe(leaseId);
    await mutate(server.url, 'lease.release', { leaseId: next }, { token: other.token });
  });

  it('at most one active lease per node × capability, held by the database under concurrent acquires', async () => {
    const contenders = [cast.owner, cast.member, other];
    const results = await Promise.all(
      contenders.flatMap((who) =>
        [1, 2].map(() =>
          mutate<Lease>(
            server.url,
            'lease.acquire',
            { nodeId: cast.node.nodeId, capability: 'arm', ttlSeconds: 60 },
            { token: who.token },
          ),
        ),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => errorCode(r) === 'lease.held')).toHaveLength(5);
    const { rows } = await server.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM capability_leases
        WHERE node_id = $1 AND capability = 'arm' AND ended_at IS NULL`,
      [cast.node.nodeId],
    );
    expect(rows[0]!.n).toBe(1);
  });
});

describe('REST (/api/v1)', () => {
  it('policies and leases round-trip as plain JSON', async () => {
    const cast = await attachedNode(server);
    const path = `/nodes/${cast.node.nodeId}`;
    const set = await rest<{ policy: string; updatedAt: string }>(
      server.url,
      'PUT',
      `${path}/policies/arm`,
      { policy: 'leased' },
      { token: cast.owner.token },
    );
    expect(set.status).toBe(200);
    expect(set.body.policy).toBe('leased');
    expect(typeof set.body.updatedAt).toBe('string');
    const get = await rest<{ items: { capability: string; policy: string }[] }>(
      server.url,
      'GET',
      `${path}/policies`,
      undefined,
      { token: cast.member.token, query: { capability: 'arm' } },
    );
    expect(get.body.items).toEqual([
      expect.objectContaining({ capability: 'arm', policy: 'leased' }),
    ]);
    const got = await rest<{ leaseId: string; expiresAt: string }>(
      server.url,
      'POST',
      `${path}/leases`,
      { capability: 'arm', ttlSeconds: 120 },
      { token: cast.member.token },
    );
    expect(got.status).toBe(200);
    const renewed = await rest<{ expiresAt: string }>(
      server.url,
      'POST',
      `/leases/${got.body.leaseId}/renew`,
      { ttlSeconds: 240 },
      { token: cast.member.token },
    );
    expect(Date.parse(renewed.body.expiresAt)).toBeGreaterThan(Date.parse(got.body.expiresAt));
    const listed = await rest<{ items: unknown[] }>(
      server.url,
      'GET',
      `${path}/leases`,
      undefined,
      {
        token: cast.owner.token,
      },
    );
    expect(listed.body.items).toHaveLength(1);
    const released = await rest<{ endReason: string }>(
      server.url,
      'POST',
      `/leases/${got.body.leaseId}/release`,
      {},
      { token: cast.member.token },
    );
    expect(released.body.endReason).toBe('released');
    const refused = await rest(
      server.url,
      'PUT',
      `${path}/policies/arm`,
      { policy: 'free' },
      { token: cast.member.token },
    );
    expect([refused.status, refused.error?.code]).toEqual([403, 'policy.not_owner']);
  });
});

describe('restart', () => {
  it('kill -9 and start on the same database: policies and leases are kept', async () => {
    const ADMIN = 'tpt_access-policy-restart-bootstrap-token-01';
    const database = await createTestDatabase();
    const env = { DATABASE_URL: database.url, TETHER_BOOTSTRAP_TOKEN: ADMIN };
    const as = (token: string) => ({ token });
    try {
      const first = await spawnServer(env);
      const url = first.url;
      const owner = await mutate<{ participantId: string; token: string }>(
        url,
        'participant.create',
        { name: 'owner', role: 'member' },
        as(ADMIN),
      );
      const holder = await mutate<{ participantId: string; token: string }>(
        url,
        'participant.create',
        { name: 'holder', role: 'member' },
        as(ADMIN),
      );
      const session = await mutate<{ sessionId: SessionId }>(
        url,
        'session.create',
        { name: 'bench' },
        as(owner.data.token),
      );
      await mutate(
        url,
        'membership.add',
        {
          sessionId: session.data.sessionId,
          participantId: holder.data.participantId,
          role: 'collaborator',
        },
        as(owner.data.token),
      );
      const key = await mutate<{ enrollmentKey: string }>(
        url,
        'enrollment.createKey',
        {},
        as(owner.data.token),
      );
      const node = await mutate<{ nodeId: string; nodeToken: string }>(url, 'device.enroll', {
        enrollmentKey: key.data.enrollmentKey,
        name: 'arm',
        nodeType: 'robot',
      });
      const nodeId = node.data.nodeId;
      const attached = await mutate(
        url,
        'runtimenode.attach',
        {
          sessionId: session.data.sessionId,
          participantId: owner.data.participantId,
          nodeId,
          nodeVersion: '2.0',
          capabilities: { arm: {} },
          healthState: 'online',
        },
        as(node.data.nodeToken),
      );
      expect(attached.status).toBe(200);
      await mutate(
        url,
        'policy.set',
        { nodeId, capability: 'arm', policy: 'leased' },
        as(owner.data.token),
      );
      const lease = await mutate<Lease>(
        url,
        'lease.acquire',
        { nodeId, capability: 'arm', ttlSeconds: 3600 },
        as(holder.data.token),
      );
      expect(lease.status).toBe(200);

      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');

      const second = await spawnServer(env);
      try {
        const policies = await query<{ items: PolicyItem[] }>(
          second.url,
          'policy.get',
          { nodeId, capability: 'arm' },
          as(owner.data.token),
        );
        expect(policies.data.items[0]).toMatchObject({ policy: 'leased', explicit: true });
        const listed = await query<{ items: Lease[] }>(
          second.url,
          'lease.list',
          { nodeId },
          as(holder.data.token),
        );
        expect(listed.data.items).toEqual([
          expect.objectContaining({ leaseId: lease.data.leaseId, heldByCaller: true }),
        ]);
        expect(listed.data.items[0]!.expiresAt).toEqual(lease.data.expiresAt);
        // Still exclusive, and still the holder's to renew.
        const byOwner = await mutate(
          second.url,
          'lease.acquire',
          { nodeId, capability: 'arm', ttlSeconds: 60 },
          as(owner.data.token),
        );
        expect(errorCode(byOwner)).toBe('lease.held');
        const renewed = await mutate(
          second.url,
          'lease.renew',
          { leaseId: lease.data.leaseId, ttlSeconds: 60 },
          as(holder.data.token),
        );
        expect(renewed.status).toBe(200);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    } finally {
      await database.drop();
    }
  });
});
