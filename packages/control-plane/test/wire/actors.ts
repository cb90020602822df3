/** Real credentials for wire tests: participants with tokens, nodes with node tokens. */
import type { NodeId, ParticipantId, SessionId } from '@tether/contracts';
import { createTRPCClient, createWSClient, wsLink, type TRPCClient } from '@trpc/client';
import superjson from 'superjson';
import WebSocket from 'ws';
import { createParticipantWithToken } from '../../src/auth/participant-tokens.js';
import { generateToken, hashToken } from '../../src/auth/tokens.js';
import { registerNode } from '../../src/nodes/service.js';
import type { AppRouter } from '../../src/trpc/root.js';
import { uniqueName } from '../fixtures.js';
import { mutate, query } from '../http.js';
import type { TestServer } from '../server.js';

export interface ParticipantActor {
  participantId: ParticipantId;
  token: string;
}

export interface NodeActor {
  nodeId: NodeId;
  ownerParticipantId: ParticipantId;
  token: string;
}

export async function participant(
  server: TestServer,
  role: 'admin' | 'member' = 'member',
): Promise<ParticipantActor> {
  const p = await createParticipantWithToken(server.db, { name: uniqueName('p'), role });
  return { participantId: p.participantId, token: p.token };
}

export async function nodeOf(
  server: TestServer,
  owner: ParticipantActor,
  nodeId?: string,
): Promise<NodeActor> {
  const token = generateToken('tnd_');
  const node = await registerNode(server.db, {
    nodeId: nodeId ?? uniqueName('node'),
    ownerParticipantId: owner.participantId,
    name: 'wire node',
    nodeType: 'daemon',
    tokenHash: hashToken(token),
  });
  return { nodeId: node.nodeId, ownerParticipantId: node.ownerParticipantId, token };
}

export async function sessionOf(
  server: TestServer,
  owner: ParticipantActor,
  minNodeVersion?: string,
): Promise<SessionId> {
  const created = await mutate<{ sessionId: SessionId }>(
    server.url,
    'session.create',
    { name: uniqueName('s'), ...(minNodeVersion ? { minNodeVersion } : {}) },
    { token: owner.token },
  );
  if (created.status !== 200) throw new Error(`session.create failed: ${created.raw}`);
  return created.data.sessionId;
}

export interface WsActor {
  client: TRPCClient<AppRouter>;
  /** Resolves with the close code when the server closes the socket. */
  closed: Promise<number | undefined>;
  opened: Promise<void>;
  close(): Promise<void>;
}

/** A tRPC client over a real WebSocket, authenticated by connectionParams. */
export function wsClient(
  server: Pick<TestServer, 'wsUrl'>,
  params: Record<string, string>,
): WsActor {
  let resolveClosed: (code: number | undefined) => void = () => undefined;
  let resolveOpened: () => void = () => undefined;
  const closed = new Promise<number | undefined>((r) => (resolveClosed = r));
  const opened = new Promise<void>((r) => (resolveOpened = r));
  const ws = createWSClient({
    url: server.wsUrl,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: params,
    retryDelayMs: () => 60_000,
    onOpen: () => resolveOpened(),
    onClose: (cause) => resolveClosed(cause?.code),
  });
  const client = createTRPCClient<AppRouter>({
    links: [wsLink({ client: ws, transformer: superjson })],
  });
  return {
    client,
    closed,
    opened,
    close: async () => {
      await ws.close();
    },
  };
}

/** The node beats `online` over HTTP; throws unless the server answered 200. */
export async function beat(server: { url: string }, node: NodeActor): Promise<void> {
  const r = await mutate(
    server.url,
    'runtimenode.heartbeat',
    { nodeId: node.nodeId, healthState: 'online' },
    { token: node.token },
  );
  if (r.status !== 200) throw new Error(`heartbeat failed: ${r.raw}`);
}

/** The session's roster as `viewer` reads it: node id → attachment state. */
export async function rosterStates(
  server: { url: string },
  viewer: ParticipantActor,
  sessionId: SessionId,
): Promise<Map<string, string>> {
  const r = await query<{ nodes: { nodeId: string; state: string }[] }>(
    server.url,
    'runtimenode.roster',
    { sessionId },
    { token: viewer.token },
  );
  if (r.status !== 200) throw new Error(`runtimenode.roster failed: ${r.raw}`);
  return new Map(r.data.nodes.map((n) => [n.nodeId, n.state]));
}
