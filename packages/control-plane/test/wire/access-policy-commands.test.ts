/**
 * The access policy deciding real invocations (`command.invoke` by node id) over HTTP: each
 * policy × owner / admin / eligible member / lease holder / viewer / stranger, and the gated
 * path's approval by the owner only. The matrix at the service level is
 * test/access-policy/decide.test.ts; this proves the commands path asks it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, mutate, type CallResult } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { acquire, attachedNode, setPolicy, type AttachedNode } from './access-actors.js';
import { participant, type ParticipantActor } from './actors.js';

let server: TestServer;
let cast: AttachedNode;
let holder: ParticipantActor;
let stranger: ParticipantActor;
let admin: ParticipantActor;

const CAPABILITY = { owner: 'shell', free: 'camera', leased: 'arm', gated: 'printer' } as const;
type Policy = keyof typeof CAPABILITY;

beforeAll(async () => {
  server = await startTestServer();
  cast = await attachedNode(server, { shell: {}, camera: {}, arm: {}, printer: {} });
  holder = await participant(server);
  stranger = await participant(server);
  admin = { participantId: server.adminParticipantId as never, token: server.adminToken };
  const added = await mutate(
    server.url,
    'membership.add',
    { sessionId: cast.sessionId, participantId: holder.participantId, role: 'collaborator' },
    { token: cast.owner.token },
  );
  expect(added.status).toBe(200);
  for (const [policy, capability] of Object.entries(CAPABILITY)) {
    await setPolicy(server, cast, capability, policy);
  }
  await acquire(server, cast.node.nodeId, 'arm', holder);
});
afterAll(async () => {
  await server?.stop();
});

function invoke(as: ParticipantActor, capability: string) {
  return mutate<{ commandId: string; state: string }>(
    server.url,
    'command.invoke',
    { target: { nodeId: cast.node.nodeId }, capability, idempotencyKey: randomUUID() },
    { token: as.token },
  );
}

/** What the caller sees: the stored command's state, or the refusal's code and reason. */
function outcome(r: CallResult<{ state: string }>): string {
  if (r.status === 200) return r.data.state;
  const reason = r.error?.data.tetherError.details?.reason;
  return typeof reason === 'string' ? `${errorCode(r)}:${reason}` : `${errorCode(r)}`;
}

const DENIED = 'command.permission_denied';
const EXPECTED: Record<Policy, Record<string, string>> = {
  owner: {
    owner: 'pending',
    admin: 'pending',
    member: `${DENIED}:not_owner`,
    holder: `${DENIED}:not_owner`,
    viewer: `${DENIED}:not_owner`,
    stranger: 'node.not_found',
  },
  free: {
    owner: 'pending',
    admin: 'pending',
    member: 'pending',
    holder: 'pending',
    viewer: `${DENIED}:not_member`,
    stranger: 'node.not_found',
  },
  leased: {
    owner: `${DENIED}:lease_held_by_other`,
    admin: `${DENIED}:lease_held_by_other`,
    member: `${DENIED}:lease_held_by_other`,
    holder: 'pending',
    viewer: `${DENIED}:not_member`,
    stranger: 'node.not_found',
  },
  gated: {
    owner: 'pending',
    admin: 'pending',
    member: 'awaiting_approval',
    holder: 'awaiting_approval',
    viewer: `${DENIED}:not_member`,
    stranger: 'node.not_found',
  },
};

describe('command.invoke asks the access policy', () => {
  for (const [policy, row] of Object.entries(EXPECTED)) {
    it(`${policy}: ${Object.entries(row)
      .map(([who, what]) => `${who} → ${what}`)
      .join(', ')}`, async () => {
      const who: Record<string, ParticipantActor> = {
        owner: cast.owner,
        admin,
        member: cast.member,
        holder,
        viewer: cast.viewer,
        stranger,
      };
      const seen: Record<string, string> = {};
      for (const name of Object.keys(row)) {
        seen[name] = outcome(await invoke(who[name]!, CAPABILITY[policy as Policy]));
      }
      expect(seen).toEqual(row);
    });
  }

  it('gated: a member waits; only the owner (or an admin) may approve, and then it is pending', async () => {
    const asked = await invoke(cast.member, 'printer');
    expect(asked.data.state).toBe('awaiting_approval');
    const byMember = await mutate(
      server.url,
      'command.approve',
      { commandId: asked.data.commandId },
      { token: cast.member.token },
    );
    expect(errorCode(byMember)).toBe(DENIED);
    const byOwner = await mutate<{ state: string; decidedBy: string }>(
      server.url,
      'command.approve',
      { commandId: asked.data.commandId },
      { token: cast.owner.token },
    );
    expect(byOwner.data).toMatchObject({ state: 'pending', decidedBy: cast.owner.participantId });
  });
});
