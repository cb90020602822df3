/**
 * What the logs say happened: one line per HTTP request (server/request-log.ts; no query
 * string, no header), WebSocket open/close lines under one connectionId, and an `audit: true` line for
 * every security-relevant decision — never a token, key or claim secret. Heartbeats are not
 * logged one by one.
 */
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { mutate, query } from '../http.js';
import { spawnServer } from '../process-server.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, sessionOf, wsClient } from '../wire/actors.js';
import { AUDITED_PROCEDURES } from '../../src/trpc/audit.js';
import { appRouter } from '../../src/trpc/root.js';

type Line = Record<string, unknown> & { msg: string; level: number };

function lines(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);
}

function audits(server: TestServer, action: string): Line[] {
  return lines(server.logs()).filter((l) => l.audit === true && l.action === action);
}

/** Waits until `pick` finds lines in the log (they are written when the response is done). */
async function logged(server: TestServer, pick: (all: Line[]) => Line[]): Promise<Line[]> {
  return eventually(
    () => Promise.resolve(pick(lines(server.logs()))),
    (found) => found.length > 0,
  );
}

describe('request lines', () => {
  it('method, path without the query, status, duration, peer and request id; no header, no token', async () => {
    await using server = await startTestServer();
    const secretInQuery = 'tpt_query_secret_should_not_appear';
    const res = await fetch(`${server.url}/api/v1/participants?limit=5`, {
      headers: { authorization: `Bearer ${server.adminToken}`, 'x-request-id': 'req-42' },
    });
    // A token in a query string (SSE clients put one there) is never logged: only the path is.
    const elsewhere = await fetch(`${server.url}/nowhere?token=${secretInQuery}`);
    expect(elsewhere.status).toBe(404);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req-42');
    const [line] = await logged(server, (all) =>
      all.filter((l) => (l.req as { id?: string } | undefined)?.id === 'req-42'),
    );
    expect(line!.level).toBe(30);
    expect(line!.req).toEqual({ id: 'req-42', method: 'GET', path: '/api/v1/participants' });
    expect(line!.res).toEqual({ statusCode: 200 });
    expect(typeof line!.durationMs).toBe('number');
    expect(line!.peer).toMatch(/127\.0\.0\.1/);
    expect(line!.transport).toBe('http');
    // The calls the request carried log under the same id.
    expect(line!.connectionId).toBe('req-42');
    await logged(server, (all) =>
      all.filter((l) => (l.req as { path?: string } | undefined)?.path === '/nowhere'),
    );
    const text = server.logs();
    expect(text).not.toContain(secretInQuery);
    expect(text).not.toContain(server.adminToken);
    expect(text).not.toMatch(/"headers"/);
  });

  it('a request id the caller gives that is not a plain token is replaced by a UUID', async () => {
    await using server = await startTestServer();
    const res = await fetch(`${server.url}/livez`, { headers: { 'x-request-id': 'a b\tc' } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a request the client abandons before the answer is logged when its connection closes, marked aborted', async () => {
    await using server = await startTestServer();
    await new Promise<void>((resolve, reject) => {
      // A body promised and never sent: the server is still reading when the client leaves.
      const req = request(`${server.url}/trpc/token.create`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': '1000',
          'x-request-id': 'abandoned-1',
        },
      });
      req.on('error', () => undefined);
      req.write('{"json":', (error) => {
        if (error) return reject(error);
        req.destroy();
        resolve();
      });
    });
    const [line] = await logged(server, (all) =>
      all.filter((l) => (l.req as { id?: string } | undefined)?.id === 'abandoned-1'),
    );
    expect(line).toMatchObject({
      level: 30,
      aborted: true,
      req: { id: 'abandoned-1', method: 'POST', path: '/trpc/token.create' },
      transport: 'http',
      connectionId: 'abandoned-1',
    });
  });

  it('successful heartbeats are not logged per call; a refused one is', async () => {
    await using server = await startTestServer();
    const owner = await participant(server, 'admin');
    const node = await nodeOf(server, owner);
    for (let i = 0; i < 3; i++) {
      const beat = await mutate(
        server.url,
        'runtimenode.heartbeat',
        { nodeId: node.nodeId, healthState: 'online' },
        { token: node.token },
      );
      expect(beat.status).toBe(200);
    }
    const refused = await mutate(
      server.url,
      'runtimenode.heartbeat',
      { nodeId: node.nodeId, healthState: 'online' },
      { token: 'tnd_not_a_real_token_0000000000' },
    );
    expect(refused.status).toBe(401);
    const heartbeatLines = await logged(server, (all) =>
      all.filter((l) => (l.req as { path?: string } | undefined)?.path?.includes('heartbeat')),
    );
    expect(heartbeatLines.map((l) => (l.res as { statusCode: number }).statusCode)).toEqual([401]);
  });
});

describe('WebSocket lines', () => {
  it('opened and closed under one connectionId, with who it was and the close code', async () => {
    await using server = await startTestServer();
    const owner = await participant(server, 'admin');
    const ws = wsClient(server, { token: owner.token });
    await ws.opened;
    await ws.client.system.info.query();
    await ws.close();
    const [closed] = await logged(server, (all) => all.filter((l) => l.msg === 'websocket closed'));
    const id = closed!.connectionId as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(closed!.transport).toBe('ws');
    expect(closed!.actor).toMatchObject({
      kind: 'participant',
      participantId: owner.participantId,
    });
    expect(typeof closed!.code).toBe('number');
    expect(typeof closed!.durationMs).toBe('number');
    const all = lines(server.logs());
    const opened = all.filter((l) => l.msg === 'websocket opened' && l.connectionId === id);
    expect(opened).toHaveLength(1);
    expect(opened[0]!.peer).toMatch(/127\.0\.0\.1/);
    expect(server.logs()).not.toContain(owner.token);
  });
});

describe('audit lines', () => {
  it('every audited procedure exists', () => {
    const procedures = new Set(Object.keys(appRouter._def.procedures));
    for (const path of AUDITED_PROCEDURES) expect(procedures, path).toContain(path);
  });

  it('tokens, enrollment keys, enrollment, node revoke, participants, floor: one line each with actor and ids, no secret', async () => {
    await using server = await startTestServer();
    const admin = { token: server.adminToken };
    const secrets: string[] = [server.adminToken];

    const created = await mutate<{ participantId: string; tokenId: string; token: string }>(
      server.url,
      'participant.create',
      { name: 'audited member', role: 'member' },
      admin,
    );
    expect(created.status).toBe(200);
    secrets.push(created.data.token);
    expect(
      (
        await mutate(
          server.url,
          'participant.suspend',
          { participantId: created.data.participantId },
          admin,
        )
      ).status,
    ).toBe(200);
    expect(
      (
        await mutate(
          server.url,
          'participant.resume',
          { participantId: created.data.participantId },
          admin,
        )
      ).status,
    ).toBe(200);

    const token = await mutate<{ tokenId: string; token: string }>(
      server.url,
      'token.create',
      { name: 'ci' },
      admin,
    );
    expect(token.status).toBe(200);
    secrets.push(token.data.token);
    expect(
      (await mutate(server.url, 'token.revoke', { tokenId: token.data.tokenId }, admin)).status,
    ).toBe(200);

    const key = await mutate<{ keyId: string; enrollmentKey: string }>(
      server.url,
      'enrollment.createKey',
      { reusable: true },
      admin,
    );
    expect(key.status).toBe(200);
    secrets.push(key.data.enrollmentKey);
    const enrolled = await mutate<{ nodeId: string; nodeToken: string }>(
      server.url,
      'device.enroll',
      { enrollmentKey: key.data.enrollmentKey, name: 'edge', nodeType: 'daemon' },
    );
    expect(enrolled.status).toBe(200);
    secrets.push(enrolled.data.nodeToken);
    const batch = await mutate<{ nodes: { nodeId: string; nodeToken: string }[] }>(
      server.url,
      'device.enrollBatch',
      {
        enrollmentKey: key.data.enrollmentKey,
        nodes: [
          { name: 'sim 1', nodeType: 'daemon' },
          { name: 'sim 2', nodeType: 'daemon' },
        ],
      },
    );
    expect(batch.status, batch.raw).toBe(200);
    secrets.push(...batch.data.nodes.map((n) => n.nodeToken));
    expect(
      (await mutate(server.url, 'enrollment.revokeKey', { keyId: key.data.keyId }, admin)).status,
    ).toBe(200);
    expect(
      (await mutate(server.url, 'node.revoke', { nodeId: enrolled.data.nodeId }, admin)).status,
    ).toBe(200);

    const owner = await participant(server, 'member');
    const sessionId = await sessionOf(server, owner);
    expect(
      (
        await mutate(
          server.url,
          'session.raiseFloor',
          { sessionId, minNodeVersion: '1.1' },
          { token: owner.token },
        )
      ).status,
    ).toBe(200);

    const expectLine = (
      action: string,
      target: Record<string, unknown>,
      actor: Record<string, unknown>,
    ) => {
      const found = audits(server, action);
      expect(found, action).toHaveLength(1);
      expect(found[0]!.outcome, action).toBe('ok');
      expect(found[0]!.level, action).toBe(30);
      expect(found[0]!.target, action).toMatchObject(target);
      expect(found[0]!.actor, action).toMatchObject(actor);
      expect(found[0]!.peer, action).toMatch(/127\.0\.0\.1/);
    };
    const byAdmin = {
      kind: 'participant',
      participantId: server.adminParticipantId,
      role: 'admin',
    };
    expectLine(
      'participant.create',
      { participantId: created.data.participantId, tokenId: created.data.tokenId, role: 'member' },
      byAdmin,
    );
    expectLine('participant.suspend', { participantId: created.data.participantId }, byAdmin);
    expectLine('participant.resume', { participantId: created.data.participantId }, byAdmin);
    expectLine('token.create', { tokenId: token.data.tokenId }, byAdmin);
    expectLine('token.revoke', { tokenId: token.data.tokenId }, byAdmin);
    expectLine('enrollment.createKey', { keyId: key.data.keyId }, byAdmin);
    expectLine('device.enroll', { nodeId: enrolled.data.nodeId }, { kind: 'anonymous' });
    expectLine(
      'device.enrollBatch',
      { nodeIds: batch.data.nodes.map((n) => n.nodeId) },
      { kind: 'anonymous' },
    );
    expectLine('enrollment.revokeKey', { keyId: key.data.keyId }, byAdmin);
    expectLine('node.revoke', { nodeId: enrolled.data.nodeId }, byAdmin);
    expectLine(
      'session.raiseFloor',
      { sessionId, minNodeVersion: '1.1' },
      { participantId: owner.participantId },
    );

    const text = server.logs();
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('pairing: request, approve, claim — the claim secret and node token never logged', async () => {
    await using server = await startTestServer();
    const requested = await mutate<{ requestId: string; pairingCode: string; claimSecret: string }>(
      server.url,
      'pairing.request',
      { name: 'edge', nodeType: 'daemon' },
    );
    expect(requested.status).toBe(200);
    const { requestId, claimSecret, pairingCode } = requested.data;
    expect(
      (await mutate(server.url, 'pairing.approve', { requestId }, { token: server.adminToken }))
        .status,
    ).toBe(200);
    const claimed = await mutate<{ nodeId: string; nodeToken: string }>(
      server.url,
      'pairing.claim',
      {
        requestId,
        claimSecret,
      },
    );
    expect(claimed.status).toBe(200);
    for (const action of ['pairing.request', 'pairing.approve', 'pairing.claim']) {
      const found = audits(server, action);
      expect(found, action).toHaveLength(1);
      expect(found[0]!.target, action).toMatchObject({ requestId });
    }
    expect(audits(server, 'pairing.claim')[0]!.target).toMatchObject({
      nodeId: claimed.data.nodeId,
    });
    const text = server.logs();
    for (const secret of [claimSecret, claimed.data.nodeToken, pairingCode]) {
      expect(text).not.toContain(secret);
    }
  });

  it('refusals: a member creating a participant is audited with its error code; a bad credential is audited as auth.failed with its address, never the token', async () => {
    await using server = await startTestServer();
    const member = await participant(server, 'member');
    const refused = await mutate(
      server.url,
      'participant.create',
      { name: 'nope', role: 'admin' },
      { token: member.token },
    );
    expect(refused.status).toBe(403);
    const [denied] = audits(server, 'participant.create');
    expect(denied!.outcome).toBe('auth.forbidden');
    expect(denied!.level).toBe(40);
    expect(denied!.actor).toMatchObject({ participantId: member.participantId, role: 'member' });

    const badToken = 'tpt_guessed_token_value_1234567890abcdef';
    const listed = await query(server.url, 'session.list', {}, { token: badToken });
    expect(listed.status).toBe(401);
    const ws = wsClient(server, { token: `${badToken}_ws` });
    await ws.opened;
    await ws.client.system.info.query();
    await ws.close();
    const failed = await logged(server, (all) =>
      all.filter((l) => l.audit === true && l.action === 'auth.failed'),
    );
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed.map((l) => l.transport).sort()).toEqual(['http', 'ws']);
    for (const line of failed) {
      expect(line.peer).toMatch(/127\.0\.0\.1/);
      expect(line.credential).toBe('tpt_');
      expect(line.reason).toBe('credential unknown, expired or revoked');
    }
    expect(server.logs()).not.toContain(badToken);
    expect(server.logs()).not.toContain(member.token);
  });
});

describe('a real server at the default level (info)', () => {
  it('stdout says what happened: request, audit and WebSocket lines, without tokens', async () => {
    const database = await createTestDatabase();
    const bootstrap = `tpt_${'b'.repeat(43)}`;
    const server = await spawnServer({
      DATABASE_URL: database.url,
      TETHER_BOOTSTRAP_TOKEN: bootstrap,
    });
    try {
      const created = await mutate<{ token: string; tokenId: string }>(
        server.url,
        'token.create',
        { name: 'from the test' },
        { token: bootstrap },
      );
      expect(created.status).toBe(200);
      const bad = await query(server.url, 'session.list', {}, { token: 'tpt_wrong_wrong_wrong' });
      expect(bad.status).toBe(401);
      const ws = wsClient(
        { wsUrl: `${server.url.replace(/^http/, 'ws')}/trpc` },
        { token: bootstrap },
      );
      await ws.opened;
      await ws.client.system.info.query();
      await ws.close();
      const out = await eventually(
        () => Promise.resolve(lines(server.stdout())),
        (all) => all.some((l) => l.msg === 'websocket closed'),
      );
      expect(
        out.some((l) => l.audit === true && l.action === 'token.create' && l.outcome === 'ok'),
      ).toBe(true);
      expect(out.some((l) => l.audit === true && l.action === 'auth.failed')).toBe(true);
      expect(out.some((l) => l.msg === 'POST /trpc/token.create 200')).toBe(true);
      expect(out.some((l) => l.msg === 'websocket opened')).toBe(true);
      expect(server.output()).not.toContain(created.data.token);
      expect(server.output()).not.toContain(bootstrap);
      expect(server.output()).not.toContain('tpt_wrong_wrong_wrong');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
      await database.drop();
    }
  });
});
