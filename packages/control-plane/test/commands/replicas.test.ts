/**
 * Two server processes on one PostgreSQL: a command invoked on one replica reaches the node whose
 * socket is on the other (woken by the feed's notification after commit, not by a poll: the
 * safety poll is off; the other replica's feed hub had paused, nobody needing it), a cancel made on one reaches the node on the other, and a node connected
 * to both replicas at once receives each command once (the guarded delivery UPDATE).
 */
import { CONTRACT_VERSION, type NodeCommandMessage, type NodeId } from '@tether/contracts';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AppRouter } from '../../src/trpc/root.js';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { mutate, query } from '../http.js';
import { spawnServer, type ServerProcess } from '../process-server.js';

const ADMIN = 'tpt_command-replicas-test-bootstrap-admin-token-1';

function listen(url: string, token: string) {
  const ws = createWSClient({
    url: `${url.replace(/^http/, 'ws')}/trpc`,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: { token, clientVersion: CONTRACT_VERSION },
    retryDelayMs: () => 60_000,
  });
  const client = createTRPCClient<AppRouter>({
    links: [wsLink({ client: ws, transformer: superjson })],
  });
  const received: NodeCommandMessage[] = [];
  let started = false;
  const sub = client.runtimenode.commands.subscribe(undefined, {
    onStarted: () => (started = true),
    onData: ({ data }) => received.push(data),
    onError: () => undefined,
  });
  return {
    received,
    started: () => started,
    close: async () => {
      sub.unsubscribe();
      await ws.close();
    },
  };
}

describe('commands across replicas', () => {
  it('invoke and cancel on one replica reach the node on the other; two sockets get each command once', async () => {
    const database = await createTestDatabase();
    const replicas: ServerProcess[] = [];
    const sockets: { close(): Promise<void> }[] = [];
    try {
      const env = {
        DATABASE_URL: database.url,
        TETHER_BOOTSTRAP_TOKEN: ADMIN,
        TETHER_FEED_POLL_MS: '600000',
      };
      replicas.push(await spawnServer(env));
      replicas.push(await spawnServer(env));
      const [a, b] = replicas as [ServerProcess, ServerProcess];

      const key = await mutate<{ enrollmentKey: string }>(
        a.url,
        'enrollment.createKey',
        {},
        { token: ADMIN },
      );
      const node = await mutate<{ nodeId: NodeId; nodeToken: string }>(a.url, 'device.enroll', {
        enrollmentKey: key.data.enrollmentKey,
        nodeId: 'replica-worker',
        name: 'replica-worker',
        nodeType: 'edge',
      });
      const token = node.data.nodeToken;
      const declared = await mutate(
        a.url,
        'runtimenode.capabilityupdate',
        { nodeId: 'replica-worker', capabilities: { work: {} } },
        { token },
      );
      expect(declared.status).toBe(200);
      // Online before its stream opens, so opening it writes no event: B's feed hub, which had
      // nobody to read for, is woken by the invoke's notification alone, and its command
      // stream must look again then (the events of the pause are skipped, not handed out).
      const online = await mutate(
        a.url,
        'runtimenode.heartbeat',
        { nodeId: 'replica-worker', healthState: 'online' },
        { token },
      );
      expect(online.status).toBe(200);

      const onB = listen(b.url, token);
      sockets.push(onB);
      await eventually(
        () => Promise.resolve(onB.started()),
        (s) => s,
      );
      const invoke = (k: string) =>
        mutate<{ commandId: string }>(
          a.url,
          'command.invoke',
          { target: { nodeId: 'replica-worker' }, capability: 'work', idempotencyKey: k },
          { token: ADMIN },
        );
      const first = await invoke('one');
      expect(first.status).toBe(200);
      await eventually(
        () => Promise.resolve(onB.received),
        (r) => r.length === 1,
      );
      expect(onB.received[0]).toMatchObject({
        kind: 'command',
        command: { commandId: first.data.commandId, attempt: 1 },
      });

      // Cancelled on A, the node on B is told.
      const cancelled = await mutate(
        a.url,
        'command.cancel',
        { commandId: first.data.commandId },
        { token: ADMIN },
      );
      expect(cancelled.status).toBe(200);
      await eventually(
        () => Promise.resolve(onB.received),
        (r) => r.length === 2,
      );
      expect(onB.received[1]).toEqual({
        kind: 'cancel',
        commandId: first.data.commandId,
        reason: 'cancelled',
      });

      // The node on both replicas at once: each new command is sent on one socket only.
      const onA = listen(a.url, token);
      sockets.push(onA);
      await eventually(
        () => Promise.resolve(onA.started()),
        (s) => s,
      );
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push((await invoke(`many-${i}`)).data.commandId);
      const commandIds = (messages: NodeCommandMessage[]) =>
        messages.flatMap((m): string[] => (m.kind === 'command' ? [m.command.commandId] : []));
      await eventually(
        () => Promise.resolve([...commandIds(onA.received), ...commandIds(onB.received)]),
        (all) => ids.every((id) => all.includes(id)),
      );
      const all = [...commandIds(onA.received), ...commandIds(onB.received)].filter((id) =>
        ids.includes(id),
      );
      expect(all.sort()).toEqual([...ids].sort());
      const listed = await query<{ items: { attempts: number }[] }>(
        b.url,
        'command.list',
        { nodeId: 'replica-worker', state: 'delivered' },
        { token: ADMIN },
      );
      expect(listed.data.items.map((c) => c.attempts)).toEqual(Array(10).fill(1));
    } finally {
      for (const s of sockets) await s.close();
      for (const r of replicas) {
        r.child.kill('SIGKILL');
        await r.exited;
      }
      await database.drop();
    }
  }, 120_000);
});
