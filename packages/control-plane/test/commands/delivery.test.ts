/**
 * A command end to end over real sockets and PostgreSQL: invoke → stored → delivered on the
 * node's WebSocket → acknowledged (running) → result; the same from a node without WebSocket
 * (REST poll); watch; the fleet feed as audit trail; cancel and expiry reaching the node.
 */
import type { CommandView, FleetEventView } from '@tether/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { mutate, query } from '../http.js';
import { rest } from '../rest.js';
import { FAST_PRESENCE_ENV, startTestServer, type TestServer } from '../server.js';
import { participant, wsClient, type ParticipantActor } from '../wire/actors.js';
import { commandNode, deliveredIds, getCommand, invokeOk, wsNode } from './helpers.js';

let server: TestServer;
let owner: ParticipantActor;

beforeAll(async () => {
  server = await startTestServer({ env: FAST_PRESENCE_ENV });
  owner = await participant(server);
});
afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
});

async function commandEvents(commandId: string): Promise<FleetEventView[]> {
  const r = await query<{ items: FleetEventView[] }>(
    server.url,
    'fleet.list',
    { filter: { types: ['command.invoked', 'command.state_changed'] }, limit: 500 },
    { token: server.adminToken },
  );
  return r.data.items.filter((e) => 'commandId' in e.data && e.data.commandId === commandId);
}

describe('invoke → deliver → ack → result', () => {
  it('over the node WebSocket: stored before sent, every transition an event', async () => {
    const node = await commandNode(server, owner);
    const live = wsNode(server.wsUrl, node);
    try {
      await live.opened;
      const invoked = await invokeOk(server, owner, {
        target: { nodeId: node.nodeId },
        capability: 'shell',
        command: 'run',
        input: { cmd: 'uptime' },
      });
      expect(invoked).toMatchObject({ state: 'pending', nodeId: node.nodeId, deduplicated: false });
      const done = await eventually(
        () => getCommand(server, owner, invoked.commandId),
        (c) => c.state === 'succeeded',
      );
      expect(done).toMatchObject({
        capability: 'shell',
        command: 'run',
        input: { cmd: 'uptime' },
        output: { ran: { cmd: 'uptime' } },
        attempts: 1,
        callerParticipantId: owner.participantId,
        error: null,
      });
      expect(done.deliveredAt).toBeInstanceOf(Date);
      expect(done.startedAt!.getTime()).toBeGreaterThanOrEqual(done.deliveredAt!.getTime());
      expect(done.finishedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt!.getTime());
      expect(live.messages).toEqual([
        {
          kind: 'command',
          command: {
            commandId: invoked.commandId,
            capability: 'shell',
            command: 'run',
            input: { cmd: 'uptime' },
            deadline: invoked.expiresAt,
            attempt: 1,
          },
        },
      ]);
      const events = await commandEvents(invoked.commandId);
      expect(
        events.map((e) =>
          e.type === 'command.invoked'
            ? `invoked:${e.data.state}:${e.data.by}`
            : e.type === 'command.state_changed'
              ? `${e.data.from}->${e.data.to}:${e.data.by.kind}`
              : e.type,
        ),
      ).toEqual([
        `invoked:pending:${owner.participantId}`,
        'pending->delivered:system',
        'delivered->running:node',
        'running->succeeded:node',
      ]);
      expect(events.every((e) => e.nodeId === node.nodeId)).toBe(true);
    } finally {
      await live.close();
    }
  });

  it('a command invoked while the node is away waits, and is sent when it subscribes', async () => {
    const node = await commandNode(server, owner);
    const invoked = await invokeOk(server, owner, {
      target: { nodeId: node.nodeId },
      capability: 'shell',
      command: 'kill',
      input: { cmd: 'x' },
    });
    expect((await getCommand(server, owner, invoked.commandId)).state).toBe('pending');
    const live = wsNode(server.wsUrl, node);
    try {
      await eventually(
        () => getCommand(server, owner, invoked.commandId),
        (c) => c.state === 'succeeded',
      );
      expect(deliveredIds(live.messages)).toEqual([invoked.commandId]);
    } finally {
      await live.close();
    }
  });

  it('over REST for a node without WebSocket: poll, ack, result; a repeated result is accepted', async () => {
    const node = await commandNode(server, owner);
    const invoked = await rest<{ commandId: string; state: string }>(
      server.url,
      'POST',
      '/commands',
      {
        target: { nodeId: node.nodeId },
        capability: 'shell',
        command: 'run',
        input: { cmd: 'ls' },
        idempotencyKey: 'rest-1',
      },
      { token: owner.token },
    );
    expect(invoked.status).toBe(200);
    const { commandId } = invoked.body;

    const poll = await rest<{
      commands: { commandId: string; attempt: number; deadline: string }[];
    }>(server.url, 'POST', '/runtime-nodes/commands/pending', {}, { token: node.token });
    expect(poll.status).toBe(200);
    expect(poll.body.commands).toMatchObject([{ commandId, attempt: 1, input: { cmd: 'ls' } }]);
    expect(typeof poll.body.commands[0]!.deadline).toBe('string');
    expect((await getCommand(server, owner, commandId)).state).toBe('delivered');
    // Not answered yet: polling again hands it out again (at least once).
    const again = await rest<{ commands: { commandId: string; attempt: number }[] }>(
      server.url,
      'POST',
      '/runtime-nodes/commands/pending',
      {},
      { token: node.token },
    );
    expect(again.body.commands).toMatchObject([{ commandId, attempt: 2 }]);

    const ack = await rest(
      server.url,
      'POST',
      `/runtime-nodes/commands/${commandId}/ack`,
      {},
      {
        token: node.token,
      },
    );
    expect(ack.status).toBe(200);
    expect(ack.body).toEqual({ commandId, state: 'running' });
    const result = await rest(
      server.url,
      'POST',
      `/runtime-nodes/commands/${commandId}/result`,
      { ok: false, error: { code: 'exit_1', message: 'exit status 1', details: { exit: 1 } } },
      { token: node.token },
    );
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ commandId, state: 'failed', accepted: true });
    const repeat = await rest(
      server.url,
      'POST',
      `/runtime-nodes/commands/${commandId}/result`,
      { ok: false, error: { details: { exit: 1 }, message: 'exit status 1', code: 'exit_1' } },
      { token: node.token },
    );
    expect(repeat.body).toEqual({ commandId, state: 'failed', accepted: true });
    const different = await rest(
      server.url,
      'POST',
      `/runtime-nodes/commands/${commandId}/result`,
      { ok: true, output: 1 },
      { token: node.token },
    );
    expect(different.status).toBe(409);
    expect(different.error?.code).toBe('command.result_conflict');

    const got = await rest<CommandView>(server.url, 'GET', `/commands/${commandId}`, undefined, {
      token: owner.token,
    });
    expect(got.body).toMatchObject({
      state: 'failed',
      attempts: 2,
      error: { code: 'exit_1', message: 'exit status 1', details: { exit: 1 } },
      output: null,
    });
    const nothingLeft = await rest<{ commands: unknown[] }>(
      server.url,
      'POST',
      '/runtime-nodes/commands/pending',
      {},
      { token: node.token },
    );
    expect(nothingLeft.body.commands).toEqual([]);
  });

  it('command.watch follows the command to its end', async () => {
    const node = await commandNode(server, owner);
    const invoked = await invokeOk(server, owner, {
      target: { nodeId: node.nodeId },
      capability: 'shell',
      command: 'run',
      input: { cmd: 'w' },
    });
    const watcher = wsClient(server, { token: owner.token });
    const states: string[] = [];
    let completed = false;
    const sub = watcher.client.command.watch.subscribe(
      { commandId: invoked.commandId },
      {
        onData: (update) => states.push(update.data.state),
        onComplete: () => (completed = true),
        onError: () => undefined,
      },
    );
    try {
      await eventually(
        () => Promise.resolve(states),
        (s) => s.includes('pending'),
      );
      const live = wsNode(server.wsUrl, node);
      try {
        await eventually(
          () => Promise.resolve(completed),
          (c) => c,
        );
      } finally {
        await live.close();
      }
      expect(states[0]).toBe('pending');
      expect(states.at(-1)).toBe('succeeded');
      // Snapshots in order; intermediate ones may coalesce, never go back.
      const order = ['pending', 'delivered', 'running', 'succeeded'];
      expect([...states].sort((a, b) => order.indexOf(a) - order.indexOf(b))).toEqual(states);
    } finally {
      sub.unsubscribe();
      await watcher.close();
    }
  });
});

describe('cancel and expiry reach the node', () => {
  it('a delivered command that is cancelled is cancelled on the node; a late result changes nothing', async () => {
    const node = await commandNode(server, owner);
    const live = wsNode(server.wsUrl, node, { run: 'ack-only' });
    try {
      await live.opened;
      const invoked = await invokeOk(server, owner, {
        target: { nodeId: node.nodeId },
        capability: 'shell',
        command: 'run',
        input: { cmd: 'sleep' },
      });
      await eventually(
        () => getCommand(server, owner, invoked.commandId),
        (c) => c.state === 'running',
      );
      const cancelled = await mutate<CommandView>(
        server.url,
        'command.cancel',
        { commandId: invoked.commandId, reason: 'changed my mind' },
        { token: owner.token },
      );
      expect(cancelled.data).toMatchObject({
        state: 'cancelled',
        decidedBy: owner.participantId,
        error: { code: 'cancelled', message: 'changed my mind' },
      });
      await eventually(
        () => Promise.resolve(live.messages),
        (m) => m.some((x) => x.kind === 'cancel'),
      );
      expect(live.messages.at(-1)).toEqual({
        kind: 'cancel',
        commandId: invoked.commandId,
        reason: 'cancelled',
      });
      const late = await live.client.runtimenode.commandresult.mutate({
        commandId: invoked.commandId,
        ok: true,
      });
      expect(late).toEqual({ commandId: invoked.commandId, state: 'cancelled', accepted: false });
      const again = await mutate(
        server.url,
        'command.cancel',
        { commandId: invoked.commandId },
        { token: owner.token },
      );
      expect(again.error?.data.tetherError.code).toBe('command.not_open');
    } finally {
      await live.close();
    }
  });

  it('a command past its deadline is expired by the sweep, and the node is told', async () => {
    const node = await commandNode(server, owner);
    const live = wsNode(server.wsUrl, node, { run: 'ack-only' });
    try {
      await live.opened;
      const invoked = await invokeOk(server, owner, {
        target: { nodeId: node.nodeId },
        capability: 'shell',
        command: 'run',
        input: { cmd: 'long' },
        timeoutMs: 1000,
      });
      const expired = await eventually(
        () => getCommand(server, owner, invoked.commandId),
        (c) => c.state === 'expired',
      );
      expect(expired.finishedAt!.getTime()).toBeGreaterThanOrEqual(invoked.expiresAt.getTime());
      await eventually(
        () => Promise.resolve(live.messages),
        (m) => m.some((x) => x.kind === 'cancel'),
      );
      expect(live.messages.at(-1)).toEqual({
        kind: 'cancel',
        commandId: invoked.commandId,
        reason: 'expired',
      });
      const events = await commandEvents(invoked.commandId);
      const last = events.at(-1)!;
      expect(last.type === 'command.state_changed' && last.data).toMatchObject({
        from: 'running',
        to: 'expired',
        by: { kind: 'system', cause: 'sweep' },
      });
    } finally {
      await live.close();
    }
  });
});
