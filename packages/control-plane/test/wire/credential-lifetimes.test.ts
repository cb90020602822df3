/**
 * Credentials end, and everything using them ends with them, through the real wire:
 *  - long-lived streams (fleet.events over SSE and WebSocket) end with auth.unauthenticated when
 *    their token is revoked, expires, or its participant is suspended; visibility follows
 *    membership while they run;
 *  - a token never outlives the token that created it (expiry capped, revoked with it,
 *    transitively); token.list shows the lineage and never a secret;
 *  - participant.suspend / participant.resume.
 */
import type { FleetEventView, SessionId } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { subscribeSse, subscribeWs, type Collected } from '../feed.js';
import { errorCode, mutate, query } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, sessionOf, wsClient, type ParticipantActor } from './actors.js';

/** Revalidation (and the auth cache) every 200 ms: expiry and direct database changes show fast. */
const FAST_AUTH = { env: { TETHER_AUTH_CACHE_TTL_MS: '200' } };

interface Issued {
  tokenId: string;
  token: string;
  expiresAt: string | null;
}

async function createToken(
  server: TestServer,
  token: string,
  input: { name: string; expiresInSeconds?: number },
): Promise<Issued> {
  const r = await mutate<Issued>(server.url, 'token.create', input, { token });
  if (r.status !== 200) throw new Error(`token.create failed: ${r.raw}`);
  return r.data;
}

interface TokenView {
  tokenId: string;
  participantId: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  createdByTokenId: string | null;
}

async function listTokens(server: TestServer, token: string, input: object = {}) {
  return query<{ items: TokenView[]; nextCursor: string | null }>(server.url, 'token.list', input, {
    token,
  });
}

let floor = 0;
/** A `session.floor_raised` event in `sessionId` (visible to its active members). */
async function sessionEvent(server: TestServer, owner: ParticipantActor, sessionId: SessionId) {
  floor++;
  const r = await mutate(
    server.url,
    'session.raiseFloor',
    { sessionId, minNodeVersion: `1.${floor}` },
    { token: owner.token },
  );
  if (r.status !== 200) throw new Error(`raiseFloor failed: ${r.raw}`);
}

const floorEventsOf = (events: FleetEventView[], sessionId: string) =>
  events.filter((e) => e.type === 'session.floor_raised' && e.sessionId === sessionId);

/** Subscribes and waits until the stream is live (an event of `sessionId` arrived through it). */
async function liveSubscription(
  server: TestServer,
  transport: 'sse' | 'ws',
  token: string,
  owner: ParticipantActor,
  sessionId: SessionId,
): Promise<Collected> {
  const sub =
    transport === 'sse' ? subscribeSse(server.url, token) : subscribeWs(server.wsUrl, token);
  const before = server.deps.feed.subscriberCount;
  await eventually(
    () => Promise.resolve(server.deps.feed.subscriberCount),
    (n) => n > before,
  );
  await sessionEvent(server, owner, sessionId);
  await sub.until((events) => floorEventsOf(events, sessionId).length >= 1);
  return sub;
}

const TRANSPORTS = ['sse', 'ws'] as const;

/** The error a stream ended with; 'still streaming' if it did not end within `ms` (a failure). */
function endOf(sub: Collected, ms = 10_000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    sub.failed,
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still streaming'), ms))),
  ]).finally(() => clearTimeout(timer));
}

describe('long-lived streams end with their credential', () => {
  for (const transport of TRANSPORTS) {
    it(`${transport}: fleet.events on a token that is then revoked ends with auth.unauthenticated`, async () => {
      await using server = await startTestServer();
      const member = await participant(server);
      const sessionId = await sessionOf(server, member);
      const dash = await createToken(server, member.token, { name: 'dashboard' });
      const sub = await liveSubscription(server, transport, dash.token, member, sessionId);
      try {
        const revoked = await mutate(
          server.url,
          'token.revoke',
          { tokenId: dash.tokenId },
          { token: member.token },
        );
        expect(revoked.status).toBe(200);
        expect(await endOf(sub)).toBe('auth.unauthenticated');
        // Nothing is held for it any more on the server: no subscriber, no live credential.
        await eventually(
          () => Promise.resolve(server.deps.feed.subscriberCount + server.deps.credentials.size),
          (n) => n === 0,
        );
      } finally {
        await sub.close();
      }
    });

    it(`${transport}: fleet.events on a token that expires ends with auth.unauthenticated within the auth cache TTL`, async () => {
      await using server = await startTestServer(FAST_AUTH);
      const member = await participant(server);
      const sessionId = await sessionOf(server, member);
      const dash = await createToken(server, member.token, {
        name: 'expiring',
        expiresInSeconds: 3600,
      });
      const sub = await liveSubscription(server, transport, dash.token, member, sessionId);
      try {
        // The expiry arrives (database clock), as it would after an hour.
        await server.db.query(`UPDATE api_tokens SET expires_at = now() WHERE id = $1`, [
          dash.tokenId,
        ]);
        expect(await endOf(sub)).toBe('auth.unauthenticated');
      } finally {
        await sub.close();
      }
    });

    it(`${transport}: fleet.events of a participant who is then suspended ends with auth.unauthenticated`, async () => {
      await using server = await startTestServer();
      const member = await participant(server);
      const sessionId = await sessionOf(server, member);
      const sub = await liveSubscription(server, transport, member.token, member, sessionId);
      try {
        const suspended = await mutate(
          server.url,
          'participant.suspend',
          { participantId: member.participantId },
          { token: server.adminToken },
        );
        expect(suspended.status, suspended.raw).toBe(200);
        expect(await endOf(sub)).toBe('auth.unauthenticated');
      } finally {
        await sub.close();
      }
    });
  }

  it('visibility follows membership while the stream runs: a removed member stops seeing that session', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const member = await participant(server);
    const shared = await sessionOf(server, owner);
    const own = await sessionOf(server, member);
    const added = await mutate(
      server.url,
      'membership.add',
      { sessionId: shared, participantId: member.participantId, role: 'viewer' },
      { token: owner.token },
    );
    expect(added.status, added.raw).toBe(200);
    const sub = await liveSubscription(server, 'sse', member.token, owner, shared);
    try {
      const removed = await mutate(
        server.url,
        'membership.remove',
        { sessionId: shared, participantId: member.participantId },
        { token: owner.token },
      );
      expect(removed.status, removed.raw).toBe(200);
      await sessionEvent(server, owner, shared);
      // A later event the member still may see: once it arrived, the earlier one would have too.
      await sessionEvent(server, member, own);
      await sub.until((events) => floorEventsOf(events, own).length >= 1);
      expect(floorEventsOf(sub.events, shared)).toHaveLength(1);
      expect(sub.error).toBeNull();
    } finally {
      await sub.close();
    }
  });
});

describe('a token never outlives the token that created it', () => {
  it('a child of a 60 s token expires with it, whatever it asks for; so does a participant that token creates', async () => {
    await using server = await startTestServer();
    const admin = await participant(server, 'admin');
    const parent = await createToken(server, admin.token, { name: 'short', expiresInSeconds: 60 });
    const child = await createToken(server, parent.token, { name: 'child' });
    const grandchild = await createToken(server, child.token, {
      name: 'grandchild',
      expiresInSeconds: 3600,
    });
    const parentExpiry = new Date(parent.expiresAt!).getTime();
    expect(child.expiresAt).not.toBeNull();
    expect(new Date(child.expiresAt!).getTime()).toBe(parentExpiry);
    expect(new Date(grandchild.expiresAt!).getTime()).toBe(parentExpiry);
    // A shorter expiry than the creator's is kept.
    const shorter = await createToken(server, parent.token, {
      name: 'shorter',
      expiresInSeconds: 60,
    });
    expect(new Date(shorter.expiresAt!).getTime()).toBeLessThanOrEqual(parentExpiry);

    const created = await mutate<{
      participantId: string;
      token: string;
      expiresAt: string | null;
    }>(
      server.url,
      'participant.create',
      { name: 'minted admin', role: 'admin' },
      { token: parent.token },
    );
    expect(created.status, created.raw).toBe(200);
    expect(new Date(created.data.expiresAt!).getTime()).toBe(parentExpiry);
    const { rows } = await server.db.query<{ expires_at: Date | null }>(
      `SELECT expires_at FROM api_tokens WHERE participant_id = $1`,
      [created.data.participantId],
    );
    expect(rows.map((r) => r.expires_at?.getTime())).toEqual([parentExpiry]);
  });

  it('revoking a token revokes every token created from it, transitively, and ends their sockets; siblings and the creator stay', async () => {
    await using server = await startTestServer();
    const member = await participant(server);
    const parent = await createToken(server, member.token, {
      name: 'parent',
      expiresInSeconds: 60,
    });
    const child = await createToken(server, parent.token, { name: 'child' });
    const grandchild = await createToken(server, child.token, { name: 'grandchild' });
    const sibling = await createToken(server, member.token, { name: 'sibling' });
    const ws = wsClient(server, { token: grandchild.token });
    await ws.client.session.list.query({});

    const revoked = await mutate(
      server.url,
      'token.revoke',
      { tokenId: parent.tokenId },
      { token: member.token },
    );
    expect(revoked.status).toBe(200);
    expect(await ws.closed).toBe(4401);
    await ws.close();
    for (const gone of [parent, child, grandchild]) {
      const r = await query(server.url, 'session.list', {}, { token: gone.token });
      expect(errorCode(r)).toBe('auth.unauthenticated');
    }
    for (const alive of [member.token, sibling.token]) {
      expect((await query(server.url, 'session.list', {}, { token: alive })).status).toBe(200);
    }

    const listed = await listTokens(server, member.token);
    expect(listed.status, listed.raw).toBe(200);
    const byId = new Map(listed.data.items.map((t) => [t.tokenId, t]));
    expect(byId.get(child.tokenId)?.createdByTokenId).toBe(parent.tokenId);
    expect(byId.get(grandchild.tokenId)?.createdByTokenId).toBe(child.tokenId);
    for (const gone of [parent, child, grandchild]) {
      expect(byId.get(gone.tokenId)?.revokedAt).not.toBeNull();
    }
    expect(byId.get(sibling.tokenId)?.revokedAt).toBeNull();
  });

  it('an enrollment key made by a 60 s token expires with it and is revoked with it (or with any token it descends from)', async () => {
    await using server = await startTestServer();
    const member = await participant(server);
    const parent = await createToken(server, member.token, { name: 'short', expiresInSeconds: 60 });
    const child = await createToken(server, parent.token, { name: 'child' });
    const key = await mutate<{ keyId: string; enrollmentKey: string; expiresAt: string }>(
      server.url,
      'enrollment.createKey',
      { reusable: true, expiresInSeconds: 365 * 24 * 3600 },
      { token: child.token },
    );
    expect(key.status, key.raw).toBe(200);
    expect(new Date(key.data.expiresAt).getTime()).toBe(new Date(parent.expiresAt!).getTime());
    // A member's key: the server names the node.
    const enroll = (name: string) =>
      mutate(server.url, 'device.enroll', {
        enrollmentKey: key.data.enrollmentKey,
        name,
        nodeType: 'edge',
      });
    expect((await enroll('before-revoke')).status).toBe(200);

    await mutate(server.url, 'token.revoke', { tokenId: parent.tokenId }, { token: member.token });
    const after = await enroll('after-revoke');
    expect(after.status).toBe(403);
    expect(errorCode(after)).toBe('enrollment.key_revoked');
  });

  it('token.list: own tokens for a member (another participant is auth.forbidden), everyone or one participant for an admin, never a secret', async () => {
    await using server = await startTestServer();
    const alice = await participant(server);
    const bob = await participant(server);
    const issued = await createToken(server, alice.token, { name: 'ci', expiresInSeconds: 600 });

    const own = await listTokens(server, alice.token);
    expect(own.status, own.raw).toBe(200);
    expect(own.data.items.map((t) => t.participantId)).toEqual([
      alice.participantId,
      alice.participantId,
    ]);
    const ci = own.data.items.find((t) => t.tokenId === issued.tokenId)!;
    expect(Object.keys(ci).sort()).toEqual(
      [
        'createdAt',
        'createdByTokenId',
        'expiresAt',
        'lastUsedAt',
        'name',
        'participantId',
        'revokedAt',
        'tokenId',
      ].sort(),
    );
    expect(ci).toMatchObject({ name: 'ci', revokedAt: null });
    expect(new Date(ci.expiresAt!).getTime()).toBe(new Date(issued.expiresAt!).getTime());
    // The caller's own initial token created it.
    expect(ci.createdByTokenId).toBe(
      own.data.items.find((t) => t.tokenId !== issued.tokenId)!.tokenId,
    );
    expect(own.raw).not.toContain(issued.token);
    expect(own.raw).not.toContain(alice.token);

    const forbidden = await listTokens(server, alice.token, { participantId: bob.participantId });
    expect(forbidden.status).toBe(403);
    expect(errorCode(forbidden)).toBe('auth.forbidden');

    const bobs = await listTokens(server, server.adminToken, { participantId: bob.participantId });
    expect(bobs.data.items.map((t) => t.participantId)).toEqual([bob.participantId]);
    // Everyone's, in pages: the test admin, alice (2), bob.
    const first = await listTokens(server, server.adminToken, { limit: 2 });
    const second = await listTokens(server, server.adminToken, {
      limit: 2,
      cursor: first.data.nextCursor,
    });
    const all = [...first.data.items, ...second.data.items].map((t) => t.tokenId);
    expect(new Set(all).size).toBe(4);
    expect(second.data.nextCursor).toBeNull();
  });
});

describe('participant.suspend / participant.resume', () => {
  it("suspension fails all the participant's tokens and ends their sockets; their nodes keep working; resume restores the tokens", async () => {
    await using server = await startTestServer();
    const member = await participant(server);
    const second = await createToken(server, member.token, { name: 'second' });
    const node = await nodeOf(server, member);
    const ws = wsClient(server, { token: second.token });
    await ws.client.session.list.query({});

    const suspended = await mutate<{ disabledAt: string | null }>(
      server.url,
      'participant.suspend',
      { participantId: member.participantId },
      { token: server.adminToken },
    );
    expect(suspended.status, suspended.raw).toBe(200);
    expect(suspended.data.disabledAt).not.toBeNull();
    expect(await ws.closed).toBe(4401);
    await ws.close();
    for (const token of [member.token, second.token]) {
      const r = await query(server.url, 'session.list', {}, { token });
      expect(r.status).toBe(401);
      expect(errorCode(r)).toBe('auth.unauthenticated');
    }
    // The node's own credential is not the person's: it keeps beating.
    const beat = await mutate(
      server.url,
      'runtimenode.heartbeat',
      { nodeId: node.nodeId, healthState: 'online' },
      { token: node.token },
    );
    expect(beat.status, beat.raw).toBe(200);

    const resumed = await mutate<{ disabledAt: string | null }>(
      server.url,
      'participant.resume',
      { participantId: member.participantId },
      { token: server.adminToken },
    );
    expect(resumed.status, resumed.raw).toBe(200);
    expect(resumed.data.disabledAt).toBeNull();
    for (const token of [member.token, second.token]) {
      // Within the auth cache TTL (a negative answer may still be cached that long).
      await eventually(
        () => query(server.url, 'session.list', {}, { token }),
        (r) => r.status === 200,
      );
    }
  });

  it('suspend and resume are admin-only; an admin cannot suspend themselves; an unknown participant is participant.not_found', async () => {
    await using server = await startTestServer();
    const member = await participant(server);
    const other = await participant(server);
    const byMember = await mutate(
      server.url,
      'participant.suspend',
      { participantId: other.participantId },
      { token: member.token },
    );
    expect(errorCode(byMember)).toBe('auth.forbidden');
    const self = await mutate(
      server.url,
      'participant.suspend',
      { participantId: server.adminParticipantId },
      { token: server.adminToken },
    );
    expect(self.status).toBe(403);
    expect(errorCode(self)).toBe('participant.suspend_self');
    for (const path of ['participant.suspend', 'participant.resume']) {
      const unknown = await mutate(
        server.url,
        path,
        { participantId: '00000000-0000-4000-8000-000000000000' },
        { token: server.adminToken },
      );
      expect(errorCode(unknown)).toBe('participant.not_found');
    }
    // Suspending twice keeps the first time.
    const first = await mutate<{ disabledAt: string }>(
      server.url,
      'participant.suspend',
      { participantId: other.participantId },
      { token: server.adminToken },
    );
    const again = await mutate<{ disabledAt: string }>(
      server.url,
      'participant.suspend',
      { participantId: other.participantId },
      { token: server.adminToken },
    );
    expect(new Date(again.data.disabledAt).getTime()).toBe(
      new Date(first.data.disabledAt).getTime(),
    );
  });
});
