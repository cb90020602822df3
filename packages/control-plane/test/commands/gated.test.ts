/**
 * Gated capabilities: an invocation waits in `awaiting_approval`, unseen by the node, until the
 * node's owner (or an admin) approves it (→ pending → delivered) or denies it (→ denied, final);
 * one left undecided expires at its deadline. Each step is an event.
 */
import type { CommandView, FleetEventView } from '@tether/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { mutate, query } from '../http.js';
import { FAST_PRESENCE_ENV, startTestServer, type TestServer } from '../server.js';
import { attachedNode, setPolicy, type AttachedNode } from '../wire/access-actors.js';
import { deliveredIds, getCommand, invokeOk, wsNode } from './helpers.js';

let server: TestServer;
let cast: AttachedNode;

beforeAll(async () => {
  server = await startTestServer({ env: FAST_PRESENCE_ENV });
  cast = await attachedNode(server, { door: {} });
  await setPolicy(server, cast, 'door', 'gated');
});
afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
});

const open = (timeoutMs?: number) =>
  invokeOk(server, cast.member, {
    target: { nodeId: cast.node.nodeId },
    capability: 'door',
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });

describe('gated commands', () => {
  it('wait for the owner: unseen by the node until approved, then delivered; the member cannot approve', async () => {
    const live = wsNode(server.wsUrl, cast.node);
    try {
      await live.opened;
      const invoked = await open();
      expect(invoked.state).toBe('awaiting_approval');
      const byMember = await mutate(
        server.url,
        'command.approve',
        { commandId: invoked.commandId },
        { token: cast.member.token },
      );
      expect(byMember.error?.data.tetherError.code).toBe('command.permission_denied');
      const ack = await mutate(
        server.url,
        'runtimenode.commandack',
        { commandId: invoked.commandId },
        { token: cast.node.token },
      );
      expect(ack.error?.data.tetherError.code).toBe('command.not_found');
      const approved = await mutate<CommandView>(
        server.url,
        'command.approve',
        { commandId: invoked.commandId },
        { token: cast.owner.token },
      );
      expect(approved.data).toMatchObject({
        state: 'pending',
        decidedBy: cast.owner.participantId,
      });
      await eventually(
        () => getCommand(server, cast.member, invoked.commandId),
        (c) => c.state === 'succeeded',
      );
      expect(deliveredIds(live.messages)).toEqual([invoked.commandId]);
      const events = await query<{ items: FleetEventView[] }>(
        server.url,
        'fleet.list',
        {
          filter: { nodeId: cast.node.nodeId, types: ['command.invoked', 'command.state_changed'] },
        },
        { token: cast.owner.token },
      );
      const story = events.data.items
        .filter((e) => 'commandId' in e.data && e.data.commandId === invoked.commandId)
        .map((e) =>
          e.type === 'command.invoked'
            ? `invoked:${e.data.state}:${e.data.decision.outcome}`
            : e.type === 'command.state_changed'
              ? `${e.data.to}:${e.data.by.kind}`
              : e.type,
        );
      expect(story).toEqual([
        'invoked:awaiting_approval:gate',
        'pending:participant',
        'delivered:system',
        'running:node',
        'succeeded:node',
      ]);
    } finally {
      await live.close();
    }
  });

  it('denied is final, with the reason; the node never sees it', async () => {
    const invoked = await open();
    const denied = await mutate<CommandView>(
      server.url,
      'command.deny',
      { commandId: invoked.commandId, reason: 'not today' },
      { token: cast.owner.token },
    );
    expect(denied.data).toMatchObject({
      state: 'denied',
      error: { code: 'denied', message: 'not today' },
    });
    const again = await mutate(
      server.url,
      'command.approve',
      { commandId: invoked.commandId },
      { token: cast.owner.token },
    );
    expect(again.error?.data.tetherError).toMatchObject({
      code: 'command.not_open',
      details: { state: 'denied' },
    });
    const poll = await mutate<{ commands: { commandId: string }[] }>(
      server.url,
      'runtimenode.pendingCommands',
      {},
      { token: cast.node.token },
    );
    expect(poll.data.commands.map((c) => c.commandId)).not.toContain(invoked.commandId);
    const result = await mutate(
      server.url,
      'runtimenode.commandresult',
      { commandId: invoked.commandId, ok: true },
      { token: cast.node.token },
    );
    expect(result.error?.data.tetherError.code).toBe('command.not_found');
  });

  it('undecided, it expires at its deadline and can no longer be approved', async () => {
    const invoked = await open(1_000);
    await eventually(
      () => getCommand(server, cast.owner, invoked.commandId),
      (c) => c.state === 'expired',
    );
    const late = await mutate(
      server.url,
      'command.approve',
      { commandId: invoked.commandId },
      { token: cast.owner.token },
    );
    expect(late.error?.data.tetherError).toMatchObject({
      code: 'command.not_open',
      details: { state: 'expired' },
    });
  });
});
