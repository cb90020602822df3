/**
 * How each `command.*` error code arises: the setup over the wire, then the one call that gets
 * the code, described by procedure so both faces can make it (test/wire/error-cases.ts drives
 * it over tRPC and REST).
 */
import { COMMAND_OPEN_PER_NODE_MAX, type TetherErrorCode } from '@tether/contracts';
import { mutate } from '../http.js';
import type { TestServer } from '../server.js';
import { participant, sessionOf } from '../wire/actors.js';
import { commandNode, invokeOk, SHELL } from './helpers.js';

export type CommandErrorCode = Extract<TetherErrorCode, `command.${string}`>;

export interface FinalCall {
  procedure:
    | 'command.invoke'
    | 'command.get'
    | 'command.cancel'
    | 'command.approve'
    | 'runtimenode.commandresult';
  input: Record<string, unknown> & { commandId?: string };
  token: string;
}

const UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000';

const run = (nodeId: string, extra: Record<string, unknown> = {}) => ({
  target: { nodeId },
  capability: 'shell',
  command: 'run',
  input: { cmd: 'ls' },
  idempotencyKey: 'error-case',
  ...extra,
});

export const COMMAND_ERROR_CASES: Record<CommandErrorCode, (s: TestServer) => Promise<FinalCall>> =
  {
    'command.not_found': (s) =>
      Promise.resolve({
        procedure: 'command.get',
        input: { commandId: UNKNOWN_UUID },
        token: s.adminToken,
      }),
    'command.permission_denied': async (s) => {
      // A co-member of the node's session sees the node; the owner-only policy refuses them.
      const owner = await participant(s);
      const member = await participant(s);
      const session = await sessionOf(s, owner);
      await mutate(
        s.url,
        'membership.add',
        { sessionId: session, participantId: member.participantId, role: 'collaborator' },
        { token: owner.token },
      );
      const node = await commandNode(s, owner);
      const attached = await mutate(
        s.url,
        'runtimenode.attach',
        {
          sessionId: session,
          participantId: owner.participantId,
          nodeId: node.nodeId,
          nodeVersion: '2.0',
          capabilities: SHELL,
          healthState: 'online',
        },
        { token: node.token },
      );
      if (attached.status !== 200) throw new Error(attached.raw);
      return { procedure: 'command.invoke', input: run(node.nodeId), token: member.token };
    },
    'command.capability_unknown': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner);
      return {
        procedure: 'command.invoke',
        input: run(node.nodeId, { capability: 'camera' }),
        token: owner.token,
      };
    },
    'command.node_unavailable': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner);
      await mutate(s.url, 'node.revoke', { nodeId: node.nodeId }, { token: owner.token });
      return { procedure: 'command.invoke', input: run(node.nodeId), token: owner.token };
    },
    'command.node_busy': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner);
      // The node already holds its maximum of open commands.
      await s.db.query(
        `INSERT INTO node_commands (node_id, capability, command, state, caller_participant_id,
                                    idempotency_key, fingerprint, targeted_by, timeout_ms, expires_at)
         SELECT $1, 'shell', 'run', 'pending', $2, 'fill-' || i, 'f', 'node', 60000,
                now() + interval '1 minute'
           FROM generate_series(1, $3::int) AS i`,
        [node.nodeId, owner.participantId, COMMAND_OPEN_PER_NODE_MAX],
      );
      return { procedure: 'command.invoke', input: run(node.nodeId), token: owner.token };
    },
    'command.no_eligible_node': async (s) => {
      const owner = await participant(s);
      await commandNode(s, owner); // declares shell, never comes online
      return {
        procedure: 'command.invoke',
        input: { ...run('x'), target: { capability: 'shell' } },
        token: owner.token,
      };
    },
    'command.command_not_allowed': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner);
      return {
        procedure: 'command.invoke',
        input: run(node.nodeId, { command: 'format' }),
        token: owner.token,
      };
    },
    'command.input_invalid': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner);
      return {
        procedure: 'command.invoke',
        input: run(node.nodeId, { input: { cmd: 5 } }),
        token: owner.token,
      };
    },
    'command.input_schema_invalid': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner, {
        shell: { inputSchema: { type: 'no-such-type' } },
      });
      return {
        procedure: 'command.invoke',
        input: run(node.nodeId, { command: undefined }),
        token: owner.token,
      };
    },
    'command.input_too_large': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner);
      return {
        procedure: 'command.invoke',
        input: run(node.nodeId, { input: { cmd: 'x'.repeat(70_000) } }),
        token: owner.token,
      };
    },
    'command.output_too_large': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner);
      const invoked = await invokeOk(s, owner, run(node.nodeId));
      return {
        procedure: 'runtimenode.commandresult',
        input: { commandId: invoked.commandId, ok: true, output: 'x'.repeat(300_000) },
        token: node.token,
      };
    },
    'command.idempotency_conflict': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner);
      await invokeOk(s, owner, run(node.nodeId));
      return {
        procedure: 'command.invoke',
        input: run(node.nodeId, { input: { cmd: 'rm' } }),
        token: owner.token,
      };
    },
    'command.not_open': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner);
      const invoked = await invokeOk(s, owner, run(node.nodeId));
      // Not awaiting approval: there is nothing to approve.
      return {
        procedure: 'command.approve',
        input: { commandId: invoked.commandId },
        token: owner.token,
      };
    },
    'command.result_conflict': async (s) => {
      const owner = await participant(s);
      const node = await commandNode(s, owner);
      const invoked = await invokeOk(s, owner, run(node.nodeId));
      await mutate(
        s.url,
        'runtimenode.commandresult',
        { commandId: invoked.commandId, ok: true, output: 1 },
        { token: node.token },
      );
      return {
        procedure: 'runtimenode.commandresult',
        input: { commandId: invoked.commandId, ok: true, output: 2 },
        token: node.token,
      };
    },
  };
