/**
 * Actors for command tests over the real wire: nodes that declare capabilities and come online,
 * invocations, and a WebSocket node (`@trpc/client` over `ws`, the transport `@tether/client`
 * uses) that runs what it is sent, deduplicating by commandId as the contract asks of nodes.
 */
import {
  CONTRACT_VERSION,
  type Capabilities,
  type CommandInvokeOutput,
  type CommandView,
  type NodeCommandMessage,
} from '@tether/contracts';
import { createTRPCClient, createWSClient, wsLink, type TRPCClient } from '@trpc/client';
import superjson from 'superjson';
import WebSocket from 'ws';
import type { AppRouter } from '../../src/trpc/root.js';
import { uniqueName } from '../fixtures.js';
import { mutate, query, type CallResult } from '../http.js';
import { beat, nodeOf, type NodeActor, type ParticipantActor } from '../wire/actors.js';

export { beat };

interface Server {
  url: string;
  wsUrl?: string;
}

/** A capability with an input schema and a commands allow-list. */
export const SHELL: Capabilities = {
  shell: {
    description: 'runs a command',
    commands: ['run', 'kill'],
    inputSchema: {
      type: 'object',
      properties: { cmd: { type: 'string', maxLength: 100 } },
      required: ['cmd'],
      additionalProperties: false,
    },
  },
};

export async function declare(
  server: Server,
  node: NodeActor,
  capabilities: Capabilities,
): Promise<void> {
  const r = await mutate(
    server.url,
    'runtimenode.capabilityupdate',
    { nodeId: node.nodeId, capabilities },
    { token: node.token },
  );
  if (r.status !== 200) throw new Error(`capabilityupdate failed: ${r.raw}`);
}

/** A node of `owner` declaring `capabilities` (online after a beat when `online`). */
export async function commandNode(
  server: Parameters<typeof nodeOf>[0],
  owner: ParticipantActor,
  capabilities: Capabilities = SHELL,
  online = false,
): Promise<NodeActor> {
  const node = await nodeOf(server, owner);
  await declare(server, node, capabilities);
  if (online) await beat(server, node);
  return node;
}

export function invoke(
  server: Server,
  caller: { token: string },
  body: Record<string, unknown>,
): Promise<CallResult<CommandInvokeOutput>> {
  return mutate<CommandInvokeOutput>(
    server.url,
    'command.invoke',
    { idempotencyKey: uniqueName('k'), ...body },
    { token: caller.token },
  );
}

export async function invokeOk(
  server: Server,
  caller: { token: string },
  body: Record<string, unknown>,
): Promise<CommandInvokeOutput> {
  const r = await invoke(server, caller, body);
  if (r.status !== 200) throw new Error(`invoke failed: ${r.raw}`);
  return r.data;
}

export async function getCommand(
  server: Server,
  caller: { token: string },
  commandId: string,
): Promise<CommandView> {
  const r = await query<CommandView>(
    server.url,
    'command.get',
    { commandId },
    {
      token: caller.token,
    },
  );
  if (r.status !== 200) throw new Error(`command.get failed: ${r.raw}`);
  return r.data;
}

export interface WsNode {
  client: TRPCClient<AppRouter>;
  /** Every message received, in order. */
  messages: NodeCommandMessage[];
  /** commandIds this node ran (once each: it deduplicates). */
  executed: string[];
  /** Resolves when the socket opened. */
  opened: Promise<void>;
  close(): Promise<void>;
}

export interface WsNodeOptions {
  /** Run each command: ack, then report this result. Default: ack and succeed with `{ ran }`. */
  run?: 'ack-and-succeed' | 'ack-only' | 'nothing';
  /** Shared across reconnects: a node remembers what it already ran. */
  executed?: string[];
}

/** A node on a real WebSocket, subscribed to `runtimenode.commands`. */
export function wsNode(wsUrl: string, node: NodeActor, options: WsNodeOptions = {}): WsNode {
  let resolveOpened: () => void = () => undefined;
  const opened = new Promise<void>((r) => (resolveOpened = r));
  const ws = createWSClient({
    url: wsUrl,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: { token: node.token, clientVersion: CONTRACT_VERSION },
    retryDelayMs: () => 100,
    onOpen: () => resolveOpened(),
  });
  const client = createTRPCClient<AppRouter>({
    links: [wsLink({ client: ws, transformer: superjson })],
  });
  const messages: NodeCommandMessage[] = [];
  const executed = options.executed ?? [];
  const mode = options.run ?? 'ack-and-succeed';
  const subscription = client.runtimenode.commands.subscribe(undefined, {
    onData: ({ data: message }) => {
      messages.push(message);
      if (message.kind !== 'command' || mode === 'nothing') return;
      const id = message.command.commandId;
      if (executed.includes(id)) return;
      executed.push(id);
      void (async () => {
        await client.runtimenode.commandack.mutate({ commandId: id });
        if (mode === 'ack-only') return;
        await client.runtimenode.commandresult.mutate({
          commandId: id,
          ok: true,
          output: { ran: message.command.input ?? null },
        });
      })().catch(() => undefined);
    },
    onError: () => undefined,
  });
  return {
    client,
    messages,
    executed,
    opened,
    close: async () => {
      subscription.unsubscribe();
      await ws.close();
    },
  };
}

export function deliveredIds(messages: NodeCommandMessage[]): string[] {
  return messages.flatMap((m) => (m.kind === 'command' ? [m.command.commandId] : []));
}
