/**
 * A non-TypeScript client's whole journey through `/api/v1` only, with plain fetch and JSON:
 * an admin creates a session and an enrollment key, a device enrolls, attaches, declares its
 * capabilities (online), beats, and is found online; a dashboard follows `GET /api/v1/events`
 * (Server-Sent Events), sees the presence change, drops, and resumes with Last-Event-ID to get
 * exactly the events it missed.
 */
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { openEvents, rest, type SseStream } from '../rest.js';
import { startTestServer } from '../server.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

interface FleetEvent {
  id: string;
  at: string;
  type: string;
  nodeId: string | null;
  sessionId: string | null;
  data: Record<string, unknown>;
}

function events(stream: SseStream): FleetEvent[] {
  return stream.frames.map((f) => JSON.parse(f.data!) as FleetEvent);
}

describe('REST round trip through /api/v1', () => {
  it('enroll → attach → capabilities → heartbeat → node online; SSE sees it and resumes exactly', async () => {
    await using server = await startTestServer();
    const admin = server.adminToken;

    const session = await rest<{ sessionId: string; createdAt: string }>(
      server.url,
      'POST',
      '/sessions',
      { name: 'rest lab' },
      { token: admin },
    );
    expect(session.status).toBe(200);
    // Plain JSON, not the tRPC wire's superjson envelope ({ json, meta }): times are ISO strings.
    expect(Object.keys(session.body)).not.toContain('json');
    expect(session.body.createdAt).toMatch(ISO);
    const sessionId = session.body.sessionId;

    const key = await rest<{ enrollmentKey: string; expiresAt: string }>(
      server.url,
      'POST',
      '/enrollment-keys',
      {},
      { token: admin },
    );
    expect(key.status).toBe(200);
    expect(new Date(key.body.expiresAt).getTime()).toBeGreaterThan(Date.now());

    const enrolled = await rest<{ nodeId: string; nodeToken: string; ownerParticipantId: string }>(
      server.url,
      'POST',
      '/device/enroll',
      {
        enrollmentKey: key.body.enrollmentKey,
        nodeId: 'rest-mac-01',
        name: 'Mac mini',
        nodeType: 'desktop',
        nodeVersion: '1.0',
      },
    );
    expect(enrolled.status).toBe(200);
    expect(enrolled.body.nodeId).toBe('rest-mac-01');
    expect(enrolled.body.nodeToken).toMatch(/^tnd_/);
    const { nodeId, nodeToken, ownerParticipantId } = enrolled.body;

    // A dashboard follows this node's events from now on.
    const live = await openEvents(server.url, { token: admin, query: { nodeId } });
    expect(live.status).toBe(200);
    expect(live.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await live.until((s) => s.comments.includes('connected'));

    const attached = await rest<{ state: string; readOnly: boolean; attachedAt: string }>(
      server.url,
      'POST',
      '/runtime-nodes/attach',
      {
        sessionId,
        participantId: ownerParticipantId,
        nodeId,
        nodeVersion: '1.0',
        capabilities: {},
        healthState: 'online',
      },
      { token: nodeToken },
    );
    expect(attached.status).toBe(200);
    expect(attached.body).toMatchObject({ state: 'registering', readOnly: false });
    expect(attached.body.attachedAt).toMatch(ISO);

    const declared = await rest<{ state: string; updatedAt: string }>(
      server.url,
      'POST',
      '/runtime-nodes/capabilities',
      {
        nodeId,
        capabilities: { 'shell.exec': { description: 'run a command', commands: ['uptime'] } },
        healthChanges: { state: 'online' },
      },
      { token: nodeToken },
    );
    expect(declared.status).toBe(200);
    expect(declared.body.state).toBe('online');

    const beat = await rest(
      server.url,
      'POST',
      '/runtime-nodes/heartbeat',
      { nodeId, healthState: 'online', metrics: { cpuPercent: 12.5, uptimeSeconds: 3600 } },
      { token: nodeToken },
    );
    expect({ status: beat.status, raw: beat.raw }).toEqual({ status: 200, raw: 'null' });

    const node = await rest<{
      nodeId: string;
      capabilities: Record<string, unknown>;
      presence: { healthState: string; lastHeartbeatAt: string | null };
      activeAttachment: { sessionId: string; state: string } | null;
    }>(server.url, 'GET', `/nodes/${nodeId}`, undefined, { token: admin });
    expect(node.status).toBe(200);
    expect(node.body.presence.healthState).toBe('online');
    expect(node.body.presence.lastHeartbeatAt).toMatch(ISO);
    expect(Object.keys(node.body.capabilities)).toEqual(['shell.exec']);
    expect(node.body.activeAttachment).toMatchObject({ sessionId, state: 'online' });

    const online = await rest<{ online: boolean }>(
      server.url,
      'GET',
      `/nodes/${nodeId}/online`,
      undefined,
      { token: admin },
    );
    expect(online.body.online).toBe(true);
    const capable = await rest<{ items: { nodeId: string }[] }>(
      server.url,
      'GET',
      '/capabilities/shell.exec/online-nodes',
      undefined,
      { token: admin },
    );
    expect(capable.body.items.map((n) => n.nodeId)).toEqual([nodeId]);
    const listed = await rest<{ items: { nodeId: string }[]; nextCursor: string | null }>(
      server.url,
      'GET',
      '/nodes',
      undefined,
      { token: admin, query: { capability: 'shell.exec', limit: 10 } },
    );
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((n) => n.nodeId)).toEqual([nodeId]);
    const roster = await rest<{ nodes: { nodeId: string; state: string; healthState: string }[] }>(
      server.url,
      'GET',
      `/sessions/${sessionId}/roster`,
      undefined,
      { token: admin },
    );
    expect(roster.body.nodes).toEqual([
      expect.objectContaining({ nodeId, state: 'online', healthState: 'online' }),
    ]);

    // The stream saw the attachment and the presence change, framed event / id / data.
    await live.until((s) =>
      events(s).some((e) => e.type === 'presence.changed' && e.data.to === 'online'),
    );
    for (const frame of live.frames) {
      const event = JSON.parse(frame.data!) as FleetEvent;
      expect(frame.lines).toEqual([
        `event: ${event.type}`,
        `id: ${event.id}`,
        `data: ${JSON.stringify(event)}`,
      ]);
      expect(event.id).toMatch(/^[1-9][0-9]*$/);
      expect(event.at).toMatch(ISO);
      expect(event.nodeId).toBe(nodeId);
    }
    const seen = events(live);
    expect(seen.map((e) => e.type)).toEqual(
      expect.arrayContaining(['runtimenode.attached', 'presence.changed']),
    );
    const lastSeen = seen.at(-1)!.id;
    live.close();
    await live.ended;
    await eventually(
      () => Promise.resolve(server.deps.feed.subscriberCount),
      (n) => n === 0,
    );

    // Missed while disconnected: a detach (attachment and presence events).
    const detached = await rest(
      server.url,
      'POST',
      '/runtime-nodes/detach',
      { nodeId, reason: 'maintenance' },
      { token: nodeToken },
    );
    expect(detached.status).toBe(200);
    const missed = await rest<{ items: FleetEvent[] }>(
      server.url,
      'POST',
      '/events/query',
      { afterId: lastSeen, filter: { nodeId } },
      { token: admin },
    );
    expect(missed.body.items.length).toBeGreaterThanOrEqual(2);
    const missedIds = missed.body.items.map((e) => e.id);

    // Resume: the header wins over an older query parameter.
    const resumed = await openEvents(server.url, {
      token: admin,
      query: { nodeId, lastEventId: '1' },
      headers: { 'last-event-id': lastSeen },
    });
    expect(resumed.status).toBe(200);
    await resumed.until((s) => s.frames.length >= missedIds.length);
    // Then a live one: the next beat brings presence back online.
    await rest(
      server.url,
      'POST',
      '/runtime-nodes/heartbeat',
      { nodeId, healthState: 'online' },
      { token: nodeToken },
    );
    await resumed.until((s) => s.frames.length > missedIds.length);
    const after = events(resumed);
    expect(after.slice(0, missedIds.length).map((e) => e.id)).toEqual(missedIds);
    expect(after[missedIds.length]?.type).toBe('presence.changed');
    expect(after[missedIds.length]?.data.to).toBe('online');
    expect(after.every((e) => BigInt(e.id) > BigInt(lastSeen))).toBe(true);
    expect(new Set(after.map((e) => e.id)).size).toBe(after.length);
    resumed.close();
  });

  it('`?lastEventId=` resumes too, and filters by event type (repeated or comma-separated)', async () => {
    await using server = await startTestServer();
    const admin = server.adminToken;
    const key = await rest<{ enrollmentKey: string }>(
      server.url,
      'POST',
      '/enrollment-keys',
      { reusable: true },
      { token: admin },
    );
    const start = await rest<{ lastEventId: string }>(
      server.url,
      'POST',
      '/events/query',
      {},
      { token: admin },
    );
    for (const nodeId of ['t-1', 't-2']) {
      const r = await rest(server.url, 'POST', '/device/enroll', {
        enrollmentKey: key.body.enrollmentKey,
        nodeId,
        name: nodeId,
        nodeType: 'edge',
      });
      expect(r.status).toBe(200);
    }
    const byQuery = await openEvents(server.url, {
      token: admin,
      query: { lastEventId: start.body.lastEventId, types: 'node.enrolled,session.floor_raised' },
    });
    await byQuery.until((s) => s.frames.length >= 2);
    expect(events(byQuery).map((e) => [e.type, e.nodeId])).toEqual([
      ['node.enrolled', 't-1'],
      ['node.enrolled', 't-2'],
    ]);
    byQuery.close();
    const repeated = await openEvents(server.url, {
      token: admin,
      query: { lastEventId: start.body.lastEventId, types: ['presence.changed', 'node.enrolled'] },
    });
    await repeated.until((s) => s.frames.length >= 2);
    expect(events(repeated).map((e) => e.nodeId)).toEqual(['t-1', 't-2']);
    repeated.close();
  });

  it('the stream sends keep-alive comments and ends when the client goes away', async () => {
    await using server = await startTestServer({ env: { TETHER_SSE_KEEPALIVE_MS: '100' } });
    const stream = await openEvents(server.url, { token: server.adminToken });
    expect(stream.status).toBe(200);
    await stream.until((s) => s.comments.includes('keep-alive'));
    expect(server.deps.feed.subscriberCount).toBe(1);
    stream.close();
    await eventually(
      () => Promise.resolve(server.deps.feed.subscriberCount),
      (n) => n === 0,
    );
  });

  it('a stream ends with an error frame when its credential is revoked', async () => {
    await using server = await startTestServer();
    const member = await rest<{ tokenId: string; token: string }>(
      server.url,
      'POST',
      '/participants',
      { name: 'watcher', role: 'member' },
      { token: server.adminToken },
    );
    expect(member.status).toBe(200);
    const stream = await openEvents(server.url, { token: member.body.token });
    await stream.until((s) => s.comments.includes('connected'));
    const revoked = await rest(
      server.url,
      'POST',
      `/tokens/${member.body.tokenId}/revoke`,
      undefined,
      { token: server.adminToken },
    );
    expect(revoked.status).toBe(200);
    await stream.ended;
    const last = stream.frames.at(-1)!;
    expect(last.event).toBe('error');
    expect(last.id).toBeUndefined();
    expect((JSON.parse(last.data!) as { error: { code: string } }).error.code).toBe(
      'auth.unauthenticated',
    );
  });

  it('a stream ends when the server stops', async () => {
    await using server = await startTestServer();
    const stream = await openEvents(server.url, { token: server.adminToken });
    await stream.until((s) => s.comments.includes('connected'));
    await server.stop();
    await stream.ended;
    expect(stream.raw().startsWith(': connected')).toBe(true);
  });

  it('a stream is refused before it starts, with the REST error body and status', async () => {
    await using server = await startTestServer();
    const refusals = [
      { options: {}, status: 401, code: 'auth.unauthenticated' },
      {
        options: { token: server.adminToken, headers: { 'last-event-id': '999999999' } },
        status: 412,
        code: 'events.cursor_expired',
      },
      {
        options: { token: server.adminToken, query: { types: 'no.such.type' } },
        status: 400,
        code: 'request.invalid',
      },
      {
        options: { token: server.adminToken, query: { lastEventId: 'abc' } },
        status: 400,
        code: 'request.invalid',
      },
    ];
    for (const { options, status, code } of refusals) {
      const stream = await openEvents(server.url, options);
      await stream.ended;
      const body = JSON.parse(stream.raw()) as { error: { code: string; message: string } };
      expect({ status: stream.status, code: body.error.code }).toEqual({ status, code });
    }
    const invalid = await openEvents(server.url, {
      token: server.adminToken,
      query: { types: 'no.such.type', bogus: 'x' },
    });
    await invalid.ended;
    const error = (JSON.parse(invalid.raw()) as { error: { message: string } }).error;
    // Field paths name the query parameters, not the procedure's nested filter.
    expect(error.message).toMatch(/types/);
    expect(error.message).toMatch(/bogus/);
    expect(error.message).not.toMatch(/filter/);
    expect(server.deps.feed.subscriberCount).toBe(0);
  });
});
