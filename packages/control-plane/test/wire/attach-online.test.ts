/**
 * `runtimenode.attach` with `healthChanges`, through the wire: the node is attached and online in
 * one call (the roster says so, a dashboard sees `runtimenode.attached` as `registering` then the
 * state change, as after attach + capabilityupdate); without capabilities it is refused before
 * anything is written; a node below the floor is admitted read-only and stays `registering`.
 */
import type { SessionId } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { subscribeSse } from '../feed.js';
import { errorCode, mutate } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, rosterStates, sessionOf, type NodeActor } from './actors.js';

interface Attached {
  attachmentId: string;
  state: string;
  readOnly: boolean;
}

const attachOnline = (
  s: TestServer,
  node: NodeActor,
  sessionId: SessionId,
  body: { nodeVersion?: string; capabilities?: Record<string, object> } = {},
) =>
  mutate<Attached>(
    s.url,
    'runtimenode.attach',
    {
      sessionId,
      participantId: node.ownerParticipantId,
      nodeId: node.nodeId,
      nodeVersion: body.nodeVersion ?? '2.0',
      capabilities: body.capabilities ?? { gpu: {} },
      healthState: 'online',
      healthChanges: { state: 'online', reason: 'ready' },
    },
    { token: node.token },
  );

describe('runtimenode.attach with healthChanges', () => {
  it('attaches and goes online in one call; the feed tells attached (registering) then the state change', async () => {
    await using server = await startTestServer();
    const owner = await participant(server, 'admin');
    const sessionId = await sessionOf(server, owner);
    const node = await nodeOf(server, owner);
    const dashboard = subscribeSse(server.url, owner.token, { filter: { nodeId: node.nodeId } });
    await eventually(
      () => Promise.resolve(server.deps.feed.subscriberCount),
      (n) => n === 1,
    );

    const attached = await attachOnline(server, node, sessionId);
    expect(attached.status).toBe(200);
    expect(attached.data).toMatchObject({ state: 'online', readOnly: false });
    expect((await rosterStates(server, owner, sessionId)).get(node.nodeId)).toBe('online');

    await dashboard.until((events) => events.some((e) => e.type === 'runtimenode.state_changed'));
    const told = dashboard.events
      .filter((e) => e.type.startsWith('runtimenode.'))
      .map((e) => ({ type: e.type, data: e.data }));
    expect(told).toMatchObject([
      { type: 'runtimenode.attached', data: { state: 'registering', previousState: null } },
      {
        type: 'runtimenode.state_changed',
        data: { from: 'registering', to: 'online', reason: 'ready' },
      },
    ]);
    await dashboard.close();
  });

  it('without capabilities: capabilityupdate_conflict and nothing attached; below the floor: read-only, registering', async () => {
    await using server = await startTestServer();
    const owner = await participant(server, 'admin');
    const sessionId = await sessionOf(server, owner, '2.0');
    const bare = await nodeOf(server, owner);
    const refused = await attachOnline(server, bare, sessionId, { capabilities: {} });
    expect(refused.status).toBe(409);
    expect(errorCode(refused)).toBe('runtimenode.capabilityupdate_conflict');

    const old = await nodeOf(server, owner);
    const admitted = await attachOnline(server, old, sessionId, { nodeVersion: '1.9' });
    expect(admitted.status).toBe(200);
    expect(admitted.data).toMatchObject({ state: 'registering', readOnly: true });

    const states = await rosterStates(server, owner, sessionId);
    expect(states.has(bare.nodeId)).toBe(false);
    expect(states.get(old.nodeId)).toBe('registering');
  });
});
