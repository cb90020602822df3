/**
 * Three real server processes on one PostgreSQL: a dashboard on one replica follows presence
 * made on another; killing the replica that swept hands the sweep to the others; no transition
 * is delivered twice; a revocation made on one replica closes the node's socket on another, and a
 * suspension made on one ends the participant's event stream on another.
 */
import type { FleetEventView, NodeId } from '@tether/contracts';
import { WS_CLOSE } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { subscribeSse, type Collected } from '../feed.js';
import { mutate } from '../http.js';
import { spawnServer, type ServerProcess } from '../process-server.js';
import { rawNodeSocket } from '../raw-ws.js';
import { fastPresenceEnv } from '../server.js';

const ADMIN = 'tpt_replicas-test-bootstrap-admin-token-001';

const ENV = {
  TETHER_BOOTSTRAP_TOKEN: ADMIN,
  ...fastPresenceEnv(400),
  // Revocations must travel by NOTIFY, not by the periodic revalidation.
  TETHER_AUTH_CACHE_TTL_MS: '600000',
  TETHER_FEED_POLL_MS: '600000',
};

async function enroll(url: string, nodeId: string): Promise<{ nodeId: NodeId; token: string }> {
  const key = await mutate<{ enrollmentKey: string }>(
    url,
    'enrollment.createKey',
    {},
    { token: ADMIN },
  );
  const enrolled = await mutate<{ nodeId: string; nodeToken: string }>(url, 'device.enroll', {
    enrollmentKey: key.data.enrollmentKey,
    nodeId,
    name: nodeId,
    nodeType: 'edge',
  });
  if (enrolled.status !== 200) throw new Error(enrolled.raw);
  return { nodeId: nodeId as NodeId, token: enrolled.data.nodeToken };
}

async function sweepTransitions(replica: ServerProcess): Promise<number> {
  const text = await (await fetch(`${replica.url}/metrics`)).text();
  let total = 0;
  for (const match of text.matchAll(/^tether_sweep_transitions_total\{[^}]*\} (\d+)/gm)) {
    total += Number(match[1]);
  }
  return total;
}

const presence = (events: FleetEventView[], nodeId: string): string[] =>
  events.flatMap((e) =>
    e.type === 'presence.changed' && e.nodeId === nodeId ? [`${e.data.to}:${e.data.cause}`] : [],
  );

describe('several replicas on one PostgreSQL', () => {
  it('presence crosses replicas, the sweep survives its holder, nothing is delivered twice', async () => {
    const database = await createTestDatabase();
    const replicas: ServerProcess[] = [];
    let dashboard: Collected | undefined;
    try {
      const env = { ...ENV, DATABASE_URL: database.url };
      // Start one first (it migrates and bootstraps), then the others. A never sweeps, so the
      // demotions below are B's or C's.
      replicas.push(await spawnServer({ ...env, TETHER_SWEEP_INTERVAL_MS: '600000' }));
      replicas.push(...(await Promise.all([spawnServer(env), spawnServer(env)])));
      const [a, b, c] = replicas as [ServerProcess, ServerProcess, ServerProcess];

      const n1 = await enroll(a.url, 'replica-node-1');
      dashboard = subscribeSse(b.url, ADMIN, { filter: { nodeId: n1.nodeId } });
      // A subscription without lastEventId starts at "now": the marker is written once the
      // server said it started, and its arrival proves the subscription is live.
      await dashboard.started;
      const marker = await mutate(
        c.url,
        'node.update',
        { nodeId: n1.nodeId, labels: { ready: 'yes' } },
        { token: ADMIN },
      );
      expect(marker.status).toBe(200);
      await dashboard.until((events) => events.some((e) => e.type === 'node.updated'));

      // Connected to A; B's dashboard sees it.
      const socket = await rawNodeSocket(a.url.replace(/^http/, 'ws') + '/trpc', n1.token);
      await dashboard.until((events) => presence(events, n1.nodeId).length === 1);

      // A dies without a word: the node's binding there is never released, and its socket is
      // gone. The sweep (B or C, whoever holds the lock each round) demotes it by age.
      a.child.kill('SIGKILL');
      await a.exited;
      await socket.closed;
      await dashboard.until((events) => presence(events, n1.nodeId).length === 3);

      // Which replica swept? Kill it: the survivor takes the next demotions over.
      const swept = [await sweepTransitions(b), await sweepTransitions(c)];
      expect(swept[0]! + swept[1]!).toBeGreaterThanOrEqual(2);
      const [sweeper, survivor] = swept[0]! > 0 ? [b, c] : [c, b];
      const lastSeen = dashboard.events.at(-1)!.id;
      await dashboard.close();
      sweeper.child.kill('SIGKILL');
      await sweeper.exited;

      // The dashboard resumes on the survivor from its last id; the node comes back there.
      dashboard = subscribeSse(survivor.url, ADMIN, {
        lastEventId: lastSeen,
        filter: { nodeId: n1.nodeId },
      });
      const beat = await mutate(
        survivor.url,
        'runtimenode.heartbeat',
        { nodeId: n1.nodeId, healthState: 'online' },
        { token: n1.token },
      );
      expect(beat.status).toBe(200);
      await dashboard.until((events) => presence(events, n1.nodeId).length === 3);
      expect(presence(dashboard.events, n1.nodeId)).toEqual([
        'online:heartbeat',
        'degraded:sweep',
        'offline:sweep',
      ]);
      expect(await sweepTransitions(survivor)).toBeGreaterThanOrEqual(2);

      // Every transition exists once in the feed, whatever the number of sweepers.
      const { rows } = await database.db.query<{ to: string; cause: string }>(
        `SELECT payload->>'to' AS to, payload->>'cause' AS cause FROM fleet_events
          WHERE node_id = $1 AND type = 'presence.changed' ORDER BY id`,
        [n1.nodeId],
      );
      expect(rows.map((r) => `${r.to}:${r.cause}`)).toEqual([
        'online:connection',
        'degraded:sweep',
        'offline:sweep',
        'online:heartbeat',
        'degraded:sweep',
        'offline:sweep',
      ]);
    } finally {
      await dashboard?.close();
      for (const replica of replicas) replica.child.kill('SIGKILL');
      await Promise.all(replicas.map((r) => r.exited));
      await database.drop();
    }
  });

  it('a node revoked through one replica has its socket on another closed with the revoked code', async () => {
    const database = await createTestDatabase();
    const replicas: ServerProcess[] = [];
    try {
      const env = { ...ENV, DATABASE_URL: database.url };
      replicas.push(await spawnServer(env));
      replicas.push(await spawnServer(env));
      const [a, b] = replicas as [ServerProcess, ServerProcess];
      const node = await enroll(a.url, 'replica-node-2');
      const socket = await rawNodeSocket(a.url.replace(/^http/, 'ws') + '/trpc', node.token);
      await eventually(
        async () =>
          (
            await database.db.query<{ health_state: string }>(
              `SELECT health_state FROM runtime_node_presence WHERE node_id = $1`,
              [node.nodeId],
            )
          ).rows[0]?.health_state,
        (state) => state === 'online',
      );
      const revoked = await mutate(b.url, 'node.revoke', { nodeId: node.nodeId }, { token: ADMIN });
      expect(revoked.status).toBe(200);
      // The auth cache TTL is ten minutes here: only the NOTIFY can have done this.
      expect(await socket.closed).toBe(WS_CLOSE.CREDENTIAL_REVOKED);
    } finally {
      for (const replica of replicas) replica.child.kill('SIGKILL');
      await Promise.all(replicas.map((r) => r.exited));
      await database.drop();
    }
  });

  it('a participant suspended through one replica has its SSE stream on another ended with auth.unauthenticated', async () => {
    const database = await createTestDatabase();
    const replicas: ServerProcess[] = [];
    let stream: Collected | undefined;
    try {
      const env = { ...ENV, DATABASE_URL: database.url };
      replicas.push(await spawnServer(env));
      replicas.push(await spawnServer(env));
      const [a, b] = replicas as [ServerProcess, ServerProcess];
      const member = await mutate<{ participantId: string; token: string }>(
        a.url,
        'participant.create',
        { name: 'far member', role: 'member' },
        { token: ADMIN },
      );
      expect(member.status, member.raw).toBe(200);
      const session = await mutate<{ sessionId: string }>(
        a.url,
        'session.create',
        { name: 'far session' },
        { token: member.data.token },
      );
      stream = subscribeSse(b.url, member.data.token);
      // Live on B: an event made on A arrives through it (retried until the stream is there).
      let floor = 0;
      await eventually(
        async () => {
          floor++;
          await mutate(
            a.url,
            'session.raiseFloor',
            { sessionId: session.data.sessionId, minNodeVersion: `1.${floor}` },
            { token: member.data.token },
          );
          return stream!.events.length;
        },
        (n) => n > 0,
      );
      const suspended = await mutate(
        a.url,
        'participant.suspend',
        { participantId: member.data.participantId },
        { token: ADMIN },
      );
      expect(suspended.status, suspended.raw).toBe(200);
      // The auth cache TTL is ten minutes here: only the NOTIFY can have done this.
      expect(await stream.failed).toBe('auth.unauthenticated');
    } finally {
      await stream?.close();
      for (const replica of replicas) replica.child.kill('SIGKILL');
      await Promise.all(replicas.map((r) => r.exited));
      await database.drop();
    }
  });
});
