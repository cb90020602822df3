/**
 * The rules of `command.invoke` over the real wire: input schema and allow-list, size bounds,
 * idempotency, targeting by capability (least recently commanded first; typed reasons when no
 * node is eligible), and that a node reads or answers only its own commands.
 */
import {
  COMMAND_INPUT_MAX_BYTES,
  type CommandInvokeOutput,
  type CommandView,
  type SessionId,
} from '@tether/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schemaCompilations } from '../../src/commands/validation.js';
import { mutate, query } from '../http.js';
import { rest } from '../rest.js';
import { startTestServer, type TestServer } from '../server.js';
import { participant, sessionOf, type NodeActor, type ParticipantActor } from '../wire/actors.js';
import { beat, commandNode, getCommand, invoke, invokeOk, SHELL } from './helpers.js';

let server: TestServer;
let owner: ParticipantActor;

beforeAll(async () => {
  server = await startTestServer();
  owner = await participant(server);
});
afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
});

const tetherCode = (r: { error?: { data: { tetherError: { code: string } } } | undefined }) =>
  r.error?.data.tetherError.code;
const details = (r: {
  error?: { data: { tetherError: { details?: Record<string, unknown> } } } | undefined;
}) => r.error?.data.tetherError.details;

async function commandCount(nodeId: string): Promise<number> {
  const { rows } = await server.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM node_commands WHERE node_id = $1`,
    [nodeId],
  );
  return rows[0]!.n;
}

describe('input and allow-list', () => {
  it('input is validated against the inputSchema; the schema is compiled once', async () => {
    const node = await commandNode(server, owner);
    const target = { nodeId: node.nodeId };
    const bad = await invoke(server, owner, {
      target,
      capability: 'shell',
      command: 'run',
      input: { cmd: 7, extra: true },
    });
    expect(bad.status).toBe(400);
    expect(tetherCode(bad)).toBe('command.input_invalid');
    const errors = details(bad)!.errors as { path: string; keyword: string }[];
    expect(errors.map((e) => `${e.path}:${e.keyword}`).sort()).toEqual([
      '/:additionalProperties',
      '/cmd:type',
    ]);
    const missing = await invoke(server, owner, { target, capability: 'shell', command: 'run' });
    expect(tetherCode(missing)).toBe('command.input_invalid');
    // Compiled by the first call above, never again for the same schema.
    const compiled = schemaCompilations();
    await invokeOk(server, owner, {
      target,
      capability: 'shell',
      command: 'run',
      input: { cmd: 'a' },
    });
    await invokeOk(server, owner, {
      target,
      capability: 'shell',
      command: 'run',
      input: { cmd: 'b' },
    });
    expect(schemaCompilations()).toBe(compiled);
    // Another schema is compiled once.
    const other = await commandNode(server, owner, {
      shell: { ...SHELL.shell, inputSchema: { type: 'object', required: ['cmd'] } },
    });
    await invokeOk(server, owner, {
      target: { nodeId: other.nodeId },
      capability: 'shell',
      command: 'run',
      input: { cmd: 'c' },
    });
    expect(schemaCompilations()).toBe(compiled + 1);
    expect(await commandCount(node.nodeId)).toBe(2);
  });

  it('a command outside the allow-list, a missing one, or one for a capability without commands is refused', async () => {
    const node = await commandNode(server, owner, { ...SHELL, ping: {} });
    const target = { nodeId: node.nodeId };
    const outside = await invoke(server, owner, {
      target,
      capability: 'shell',
      command: 'format',
      input: { cmd: 'x' },
    });
    expect(outside.status).toBe(400);
    expect(tetherCode(outside)).toBe('command.command_not_allowed');
    expect(details(outside)).toMatchObject({ allowed: ['run', 'kill'] });
    const none = await invoke(server, owner, { target, capability: 'shell', input: { cmd: 'x' } });
    expect(tetherCode(none)).toBe('command.command_not_allowed');
    const extra = await invoke(server, owner, { target, capability: 'ping', command: 'run' });
    expect(tetherCode(extra)).toBe('command.command_not_allowed');
    // A capability without commands or schema takes any JSON input.
    await invokeOk(server, owner, { target, capability: 'ping', input: [1, 'two', null] });
    expect(await commandCount(node.nodeId)).toBe(1);
  });

  it('an inputSchema of another draft is understood; an unusable one is refused', async () => {
    const node = await commandNode(server, owner, {
      modern: {
        inputSchema: {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          type: 'array',
          prefixItems: [{ type: 'string' }],
          items: false,
        },
      },
      broken: { inputSchema: { $ref: 'https://example.com/remote.json' } },
    });
    const target = { nodeId: node.nodeId };
    await invokeOk(server, owner, { target, capability: 'modern', input: ['one'] });
    const tooMany = await invoke(server, owner, {
      target,
      capability: 'modern',
      input: ['a', 'b'],
    });
    expect(tetherCode(tooMany)).toBe('command.input_invalid');
    const broken = await invoke(server, owner, { target, capability: 'broken', input: {} });
    expect(broken.status).toBe(409);
    expect(tetherCode(broken)).toBe('command.input_schema_invalid');
  });

  it('input and result sizes are bounded (typed 413s), and the server keeps serving', async () => {
    const node = await commandNode(server, owner, { blob: {} });
    const target = { nodeId: node.nodeId };
    const big = await invoke(server, owner, {
      target,
      capability: 'blob',
      input: 'x'.repeat(COMMAND_INPUT_MAX_BYTES),
    });
    expect(big.status).toBe(413);
    expect(details(big)).toMatchObject({ maxBytes: COMMAND_INPUT_MAX_BYTES });
    const fits = await invokeOk(server, owner, {
      target,
      capability: 'blob',
      input: 'x'.repeat(COMMAND_INPUT_MAX_BYTES - 2),
    });
    const tooMuch = await mutate(
      server.url,
      'runtimenode.commandresult',
      {
        commandId: fits.commandId,
        ok: false,
        error: { message: 'x'.repeat(4096), details: 'y'.repeat(300_000) },
      },
      { token: node.token },
    );
    expect(tooMuch.status).toBe(413);
    expect(tetherCode(tooMuch)).toBe('command.output_too_large');
    expect((await getCommand(server, owner, fits.commandId)).state).toBe('pending');
  });
});

describe('idempotency', () => {
  it('the same key from the same caller is the same command, never a second one', async () => {
    const node = await commandNode(server, owner, { deploy: {} });
    const body = {
      target: { nodeId: node.nodeId },
      capability: 'deploy',
      input: { version: '1.2', canary: true },
      idempotencyKey: 'deploy-42',
    };
    const results = await Promise.all(Array.from({ length: 8 }, () => invoke(server, owner, body)));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    const ids = new Set(results.map((r) => r.data.commandId));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => !r.data.deduplicated)).toHaveLength(1);
    expect(await commandCount(node.nodeId)).toBe(1);
    // Key order in the input does not make it another request.
    const reordered = await invoke(server, owner, {
      ...body,
      input: { canary: true, version: '1.2' },
    });
    expect(reordered.data).toMatchObject({ commandId: [...ids][0], deduplicated: true });
    // Another caller's key space is its own.
    const admin = { token: server.adminToken };
    const theirs = await invoke(server, admin, body);
    expect(theirs.data.commandId).not.toBe([...ids][0]);
    // The same key for another request is refused, naming the first command.
    const changed = await invoke(server, owner, { ...body, input: { version: '1.3' } });
    expect(changed.status).toBe(409);
    expect(details(changed)).toEqual({ commandId: [...ids][0] });
    expect(await commandCount(node.nodeId)).toBe(2);
  });
});

describe('targeting by capability', () => {
  it('picks the least recently commanded eligible node, spreading invocations', async () => {
    const cap = { 'render.frames': {} };
    const nodes: NodeActor[] = [];
    for (let i = 0; i < 3; i++) nodes.push(await commandNode(server, owner, cap, true));
    // Offline, or not declaring it: never picked.
    await commandNode(server, owner, cap, false);
    await commandNode(server, owner, { other: {} }, true);
    const picks: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await invokeOk(server, owner, {
        target: { capability: 'render.frames' },
        capability: 'render.frames',
      });
      picks.push(r.nodeId);
    }
    const ids = nodes.map((n) => n.nodeId);
    // Each of the three once, then again in the same order.
    expect(new Set(picks.slice(0, 3))).toEqual(new Set(ids));
    expect(picks.slice(3)).toEqual(picks.slice(0, 3));
  });

  it('target.capability must be the invoked capability', async () => {
    const r = await invoke(server, owner, {
      target: { capability: 'a' },
      capability: 'b',
    });
    expect(r.status).toBe(400);
    expect(tetherCode(r)).toBe('request.invalid');
  });

  it('no eligible node says why: none_online, not_allowed, all_busy', async () => {
    const cap = { 'scan.qr': {} };
    const call = (who: { token: string }, sessionId?: SessionId) =>
      invoke(server, who, {
        target: { capability: 'scan.qr', ...(sessionId ? { sessionId } : {}) },
        capability: 'scan.qr',
      });
    const offline = await commandNode(server, owner, cap, false);
    const none = await call(owner);
    expect(none.status).toBe(409);
    expect(details(none)).toMatchObject({ reason: 'none_online' });

    // Online and visible to a co-member of its session, whom the owner-only policy refuses.
    await beat(server, offline);
    const member = await participant(server);
    const session = await sessionOf(server, owner);
    await mutate(
      server.url,
      'membership.add',
      { sessionId: session, participantId: member.participantId, role: 'collaborator' },
      { token: owner.token },
    );
    const attached = await mutate(
      server.url,
      'runtimenode.attach',
      {
        sessionId: session,
        participantId: owner.participantId,
        nodeId: offline.nodeId,
        nodeVersion: '2.0',
        capabilities: cap,
        healthState: 'online',
      },
      { token: offline.token },
    );
    expect(attached.status).toBe(200);
    const refused = await call(member, session);
    expect(details(refused)).toMatchObject({ reason: 'not_allowed' });
    // Someone who cannot see the node learns nothing about it.
    const stranger = await participant(server);
    expect(details(await call(stranger))).toMatchObject({ reason: 'none_online' });

    // Read-only (below the session's raised floor): not eligible.
    await mutate(
      server.url,
      'session.raiseFloor',
      { sessionId: session, minNodeVersion: '9.0' },
      { token: owner.token },
    );
    expect(details(await call(owner, session))).toMatchObject({ reason: 'none_online' });
    const direct = await invoke(server, owner, {
      target: { nodeId: offline.nodeId },
      capability: 'scan.qr',
    });
    expect(details(direct)).toMatchObject({ reason: 'read_only' });
  });

  it('all_busy when every allowed node holds its maximum of open commands', async () => {
    const node = await commandNode(server, owner, { 'print.label': {} }, true);
    await server.db.query(
      `INSERT INTO node_commands (node_id, capability, state, caller_participant_id,
                                  idempotency_key, fingerprint, targeted_by, timeout_ms, expires_at)
       SELECT $1, 'print.label', 'pending', $2, 'busy-' || i, 'f', 'node', 60000,
              now() + interval '1 minute'
         FROM generate_series(1, 256) AS i`,
      [node.nodeId, owner.participantId],
    );
    const r = await invoke(server, owner, {
      target: { capability: 'print.label' },
      capability: 'print.label',
    });
    expect(details(r)).toMatchObject({ reason: 'all_busy' });
  });
});

describe('a node sees and answers only its own commands', () => {
  it('another node gets not_found for ack and result, however it asks; participants need to be caller, owner or admin', async () => {
    const mine = await commandNode(server, owner);
    const other = await commandNode(server, owner);
    const invoked = await invokeOk(server, owner, {
      target: { nodeId: mine.nodeId },
      capability: 'shell',
      command: 'run',
      input: { cmd: 'secret' },
    });
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const commandId of [invoked.commandId, unknown]) {
      const ack = await mutate(
        server.url,
        'runtimenode.commandack',
        { commandId },
        {
          token: other.token,
        },
      );
      const result = await rest(
        server.url,
        'POST',
        `/runtime-nodes/commands/${commandId}/result`,
        { ok: true, output: 'pwned' },
        { token: other.token },
      );
      expect([ack.status, tetherCode(ack)]).toEqual([404, 'command.not_found']);
      expect([result.status, result.error?.code]).toEqual([404, 'command.not_found']);
      // The same message for an existing command as for none: nothing leaks.
      expect(result.error?.message).toBe('No such command addressed to this node.');
    }
    // Naming the other node in the body is a principal mismatch.
    const claimed = await mutate(
      server.url,
      'runtimenode.commandack',
      { nodeId: mine.nodeId, commandId: invoked.commandId },
      { token: other.token },
    );
    expect(tetherCode(claimed)).toBe('auth.principal_mismatch');
    // The other node's poll does not carry it.
    const poll = await mutate<{ commands: unknown[] }>(
      server.url,
      'runtimenode.pendingCommands',
      {},
      { token: other.token },
    );
    expect(poll.data.commands).toEqual([]);
    expect((await getCommand(server, owner, invoked.commandId)).state).toBe('pending');

    const stranger = await participant(server);
    const peek = await query(
      server.url,
      'command.get',
      { commandId: invoked.commandId },
      {
        token: stranger.token,
      },
    );
    expect(tetherCode(peek)).toBe('command.not_found');
    const list = await query<{ items: CommandView[] }>(
      server.url,
      'command.list',
      { nodeId: mine.nodeId },
      { token: stranger.token },
    );
    expect(list.data.items).toEqual([]);
    const cancel = await mutate(
      server.url,
      'command.cancel',
      { commandId: invoked.commandId },
      {
        token: stranger.token,
      },
    );
    expect(tetherCode(cancel)).toBe('command.not_found');
  });
});

describe('command.list', () => {
  it('filters by node, state and caller; pages newest first without repeats', async () => {
    const node = await commandNode(server, owner, { tick: {} });
    const made: CommandInvokeOutput[] = [];
    for (let i = 0; i < 5; i++) {
      made.push(
        await invokeOk(server, owner, { target: { nodeId: node.nodeId }, capability: 'tick' }),
      );
    }
    await mutate(
      server.url,
      'command.cancel',
      { commandId: made[1]!.commandId },
      {
        token: owner.token,
      },
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; data: { items: CommandView[]; nextCursor: string | null } } =
        await query(
          server.url,
          'command.list',
          { nodeId: node.nodeId, limit: 2, ...(cursor ? { cursor } : {}) },
          { token: owner.token },
        );
      expect(page.status).toBe(200);
      seen.push(...page.data.items.map((c) => c.commandId));
      cursor = page.data.nextCursor;
    } while (cursor);
    expect(seen).toEqual(made.map((m) => m.commandId).reverse());
    const cancelled = await rest<{ items: CommandView[] }>(
      server.url,
      'GET',
      '/commands',
      undefined,
      {
        token: owner.token,
        query: { nodeId: node.nodeId, state: 'cancelled' },
      },
    );
    expect(cancelled.body.items.map((c) => c.commandId)).toEqual([made[1]!.commandId]);
    const byCaller = await query<{ items: CommandView[] }>(
      server.url,
      'command.list',
      { nodeId: node.nodeId, callerParticipantId: server.adminParticipantId },
      { token: owner.token },
    );
    expect(byCaller.data.items).toEqual([]);
  });
});
