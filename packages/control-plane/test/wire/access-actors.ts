/**
 * A node attached to a session, with its owner and a collaborator and a viewer of that session:
 * the cast of the access-policy wire tests (policies and leases).
 */
import type { SessionId } from '@tether/contracts';
import { mutate } from '../http.js';
import type { TestServer } from '../server.js';
import { nodeOf, participant, sessionOf, type NodeActor, type ParticipantActor } from './actors.js';

export interface AttachedNode {
  owner: ParticipantActor;
  member: ParticipantActor;
  viewer: ParticipantActor;
  node: NodeActor;
  sessionId: SessionId;
}

async function ok(result: Promise<{ status: number; raw: string }>, what: string) {
  const r = await result;
  if (r.status !== 200) throw new Error(`${what} failed: ${r.raw}`);
}

export async function attachedNode(
  server: TestServer,
  capabilities: Record<string, object> = { arm: {}, camera: {} },
): Promise<AttachedNode> {
  const owner = await participant(server);
  const member = await participant(server);
  const viewer = await participant(server);
  const node = await nodeOf(server, owner);
  const sessionId = await sessionOf(server, owner);
  for (const [who, role] of [
    [member, 'collaborator'],
    [viewer, 'viewer'],
  ] as const) {
    await ok(
      mutate(
        server.url,
        'membership.add',
        { sessionId, participantId: who.participantId, role },
        { token: owner.token },
      ),
      'membership.add',
    );
  }
  await ok(
    mutate(
      server.url,
      'runtimenode.attach',
      {
        sessionId,
        participantId: owner.participantId,
        nodeId: node.nodeId,
        nodeVersion: '1.0',
        capabilities,
        healthState: 'online',
      },
      { token: node.token },
    ),
    'runtimenode.attach',
  );
  return { owner, member, viewer, node, sessionId };
}

/** Sets a capability's policy as the node's owner. */
export async function setPolicy(
  server: TestServer,
  cast: AttachedNode,
  capability: string,
  policy: string,
): Promise<void> {
  await ok(
    mutate(
      server.url,
      'policy.set',
      { nodeId: cast.node.nodeId, capability, policy },
      { token: cast.owner.token },
    ),
    'policy.set',
  );
}

/** Acquires a lease; returns its id. */
export async function acquire(
  server: TestServer,
  nodeId: string,
  capability: string,
  as: ParticipantActor,
  ttlSeconds = 600,
): Promise<string> {
  const r = await mutate<{ leaseId: string }>(
    server.url,
    'lease.acquire',
    { nodeId, capability, ttlSeconds },
    { token: as.token },
  );
  if (r.status !== 200) throw new Error(`lease.acquire failed: ${r.raw}`);
  return r.data.leaseId;
}
