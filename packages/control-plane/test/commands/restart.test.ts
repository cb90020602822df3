/**
 * Nothing is lost across a `kill -9` of the server, in any command state: pending, delivered,
 * running and awaiting approval are all there after the restart, redelivered to the node (which
 * deduplicates by commandId, so nothing runs twice), and the ones whose deadline passed while the
 * server was down expire. The node's WebSocket client resubscribes by itself after a restart on
 * the same address and gets exactly the open commands again.
 */
import {
  CONTRACT_VERSION,
  type CommandState,
  type NodeCommandMessage,
  type NodeId,
} from '@tether/contracts';
import { createTRPCClient, createWSClient, wsLink, type TRPCClient } from '@trpc/client';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AppRouter } from '../../src/trpc/root.js';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { mutate, query } from '../http.js';
import { freePort } from '../postgres.js';
import { spawnServer, type ServerProcess } from '../process-server.js';

const ADMIN = 'tpt_command-restart-test-bootstrap-admin-token-01';

/**
 * A daemon: runs each command it has not run before (ack, then succeed), except those `hold`
 * names, which it only records as received. `ran` survives its reconnects (and its restarts).
 */
function daemon(
  wsUrl: string,
  token: string,
  ran: string[],
  hold: (message: NodeCommandMessage & { kind: 'command' }) => boolean = () => false,
) {
  const ws = createWSClient({
    url: wsUrl,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: { token, clientVersion: CONTRACT_VERSION },
    retryDelayMs: () => 200,
  });
  const client: TRPCClient<AppRouter> = createTRPCClient<AppRouter>({
    links: [wsLink({ client: ws, transformer: superjson })],
  });
  const received: NodeCommandMessage[] = [];
  const sub = client.runtimenode.commands.subscribe(undefined, {
    onData: ({ data: message }) => {
      received.push(message);
      if (message.kind !== 'command' || hold(message)) return;
      const id = message.command.commandId;
      if (ran.includes(id)) return;
      ran.push(id);
      void (async () => {
        await client.runtimenode.commandack.mutate({ commandId: id });
        await client.runtimenode.commandresult.mutate({ commandId: id, ok: true, output: id });
      })().catch(() => undefined);
    },
    onError: () => undefined,
  });
  return {
    received,
    attempts: (id: string) =>
      received.flatMap((m) =>
        m.kind === 'command' && m.command.commandId === id ? [m.command.attempt] : [],
      ),
    close: async () => {
      sub.unsubscribe();
      await ws.close();
    },
  };
}

async function ok<T>(r: Promise<{ status: number; raw: string; data: T }>): Promise<T> {
  const result = await r;
  if (result.status !== 200) throw new Error(result.raw);
  return result.data;
}

describe('commands across kill -9', () => {
  it('pending, delivered, running and awaiting approval survive; expired ones expire; nothing runs twice', async () => {
    const database = await createTestDatabase();
    const port = await freePort();
    const env = {
      DATABASE_URL: database.url,
      TETHER_BOOTSTRAP_TOKEN: ADMIN,
      TETHER_PORT: String(port),
      TETHER_SWEEP_INTERVAL_MS: '100',
      TETHER_FEED_POLL_MS: '600000',
    };
    let server: ServerProcess | undefined;
    const daemons: { close(): Promise<void> }[] = [];
    try {
      server = await spawnServer(env);
      const url = server.url;
      const wsUrl = `${url.replace(/^http/, 'ws')}/trpc`;

      // The cast: an admin-owned node attached to a session, a member of it, a gated capability.
      const key = await ok(
        mutate<{ enrollmentKey: string }>(url, 'enrollment.createKey', {}, { token: ADMIN }),
      );
      const node = await ok(
        mutate<{ nodeId: NodeId; nodeToken: string }>(url, 'device.enroll', {
          enrollmentKey: key.enrollmentKey,
          nodeId: 'restart-node',
          name: 'restart-node',
          nodeType: 'edge',
        }),
      );
      const member = await ok(
        mutate<{ participantId: string; token: string }>(
          url,
          'participant.create',
          { name: 'member', role: 'member' },
          { token: ADMIN },
        ),
      );
      const session = await ok(
        mutate<{ sessionId: string }>(url, 'session.create', { name: 's' }, { token: ADMIN }),
      );
      await ok(
        mutate(
          url,
          'membership.add',
          {
            sessionId: session.sessionId,
            participantId: member.participantId,
            role: 'collaborator',
          },
          { token: ADMIN },
        ),
      );
      const owner = await ok(
        query<{ ownerParticipantId: string }>(
          url,
          'node.get',
          { nodeId: node.nodeId },
          {
            token: ADMIN,
          },
        ),
      );
      await ok(
        mutate(
          url,
          'runtimenode.attach',
          {
            sessionId: session.sessionId,
            participantId: owner.ownerParticipantId,
            nodeId: node.nodeId,
            nodeVersion: CONTRACT_VERSION,
            capabilities: { work: {}, door: {} },
            healthState: 'online',
          },
          { token: node.nodeToken },
        ),
      );
      await ok(
        mutate(
          url,
          'policy.set',
          { nodeId: node.nodeId, capability: 'door', policy: 'gated' },
          { token: ADMIN },
        ),
      );
      let keys = 0;
      const invoke = (capability: string, token: string) =>
        ok(
          mutate<{ commandId: string; state: CommandState }>(
            url,
            'command.invoke',
            {
              target: { nodeId: node.nodeId },
              capability,
              idempotencyKey: `k${keys++}`,
            },
            { token },
          ),
        );
      const stateOf = async (commandId: string): Promise<CommandState> =>
        (
          await ok(
            query<{ state: CommandState }>(
              server!.url,
              'command.get',
              { commandId },
              {
                token: ADMIN,
              },
            ),
          )
        ).state;

      // Phase 1: the node receives `running` and `delivered` and holds them; it starts `running`.
      const ran: string[] = [];
      const first = daemon(wsUrl, node.nodeToken, ran, () => true);
      daemons.push(first);
      const running = await invoke('work', ADMIN);
      const delivered = await invoke('work', ADMIN);
      await eventually(
        () => Promise.all([stateOf(running.commandId), stateOf(delivered.commandId)]),
        (s) => s.every((x) => x === 'delivered'),
      );
      ran.push(running.commandId); // the daemon starts it…
      await ok(
        mutate(
          url,
          'runtimenode.commandack',
          { commandId: running.commandId },
          {
            token: node.nodeToken,
          },
        ),
      );
      await first.close();
      // …and goes away. Meanwhile: a pending one, one awaiting approval, one about to expire.
      const pending = await invoke('work', ADMIN);
      const gated = await invoke('door', member.token);
      const doomed = await invoke('work', ADMIN);
      expect([pending.state, gated.state, doomed.state]).toEqual([
        'pending',
        'awaiting_approval',
        'pending',
      ]);
      expect(await stateOf(running.commandId)).toBe('running');

      server.child.kill('SIGKILL');
      await server.exited;
      // Its deadline passes while the server is down.
      await database.db.query(
        `UPDATE node_commands SET expires_at = now() - interval '1 second' WHERE id = $1`,
        [doomed.commandId],
      );
      server = await spawnServer(env);

      // Phase 2: the node comes back. Everything open is sent again; it runs each command once.
      const second = daemon(wsUrl, node.nodeToken, ran);
      daemons.push(second);
      await eventually(
        () => Promise.all([stateOf(delivered.commandId), stateOf(pending.commandId)]),
        (s) => s.every((x) => x === 'succeeded'),
      );
      expect(await stateOf(doomed.commandId)).toBe('expired');
      expect(await stateOf(gated.commandId)).toBe('awaiting_approval');
      expect(second.attempts(running.commandId)).toEqual([2]);
      expect(second.attempts(delivered.commandId)).toEqual([2]);
      expect(second.attempts(pending.commandId)).toEqual([1]);
      expect(second.attempts(doomed.commandId)).toEqual([]);
      expect(second.attempts(gated.commandId)).toEqual([]);
      // The daemon finishes what it started before the crash.
      await ok(
        mutate(
          server.url,
          'runtimenode.commandresult',
          { commandId: running.commandId, ok: true, output: 'finished' },
          { token: node.nodeToken },
        ),
      );

      // Phase 3: killed again with the daemon connected; its client reconnects to the restarted
      // server by itself, and the approval made there reaches it.
      server.child.kill('SIGKILL');
      await server.exited;
      server = await spawnServer(env);
      await ok(
        mutate(server.url, 'command.approve', { commandId: gated.commandId }, { token: ADMIN }),
      );
      await eventually(
        () => stateOf(gated.commandId),
        (s) => s === 'succeeded',
      );
      expect(second.attempts(gated.commandId)).toEqual([1]);
      // Nothing ran twice, and finished commands were never sent again.
      expect([...ran].sort()).toEqual(
        [running.commandId, delivered.commandId, pending.commandId, gated.commandId].sort(),
      );
      expect(second.attempts(delivered.commandId)).toEqual([2]);
      expect(second.attempts(pending.commandId)).toEqual([1]);
    } finally {
      for (const d of daemons) await d.close();
      if (server) {
        server.child.kill('SIGKILL');
        await server.exited;
      }
      await database.drop();
    }
  }, 120_000);
});
