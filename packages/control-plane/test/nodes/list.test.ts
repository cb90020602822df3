import { randomBytes } from 'node:crypto';
import type { NodeId, NodeListInput } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import type { ParticipantPrincipal } from '../../src/auth/principal.js';
import { RevocationBus } from '../../src/auth/revocations.js';
import { encodeCursor } from '../../src/db/pagination.js';
import { listNodes } from '../../src/nodes/queries.js';
import { registerNode, revokeNode, type RegisterNodeInput } from '../../src/nodes/service.js';
import { attach, detach, heartbeat } from '../../src/runtime-nodes/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import { addMemberAs, attachInput, makeParticipant, makeSession, uniqueName } from '../fixtures.js';

const t = useTestDatabase();

async function node(owner: ParticipantPrincipal, extra: Partial<RegisterNodeInput> = {}) {
  const registered = await registerNode(t.db, {
    nodeId: uniqueName('n'),
    ownerParticipantId: owner.participantId,
    name: 'node',
    nodeType: 'daemon',
    tokenHash: randomBytes(32),
    ...extra,
  });
  return {
    kind: 'node' as const,
    nodeId: registered.nodeId,
    ownerParticipantId: registered.ownerParticipantId,
  };
}

async function ids(
  actor: ParticipantPrincipal,
  input: NonNullable<NodeListInput> = {},
): Promise<NodeId[]> {
  return (await listNodes(t.db, actor, { limit: 500, ...input })).items.map((n) => n.nodeId).sort();
}

describe('node.list filters', () => {
  it('status: revoked identities are listed by default and selected by status', async () => {
    const owner = await makeParticipant(t.db);
    const active = await node(owner);
    const revoked = await node(owner);
    await revokeNode(t.db, owner, { nodeId: revoked.nodeId }, new RevocationBus());
    expect(await ids(owner)).toEqual([active.nodeId, revoked.nodeId].sort());
    expect(await ids(owner, { status: 'active' })).toEqual([active.nodeId]);
    expect(await ids(owner, { status: 'revoked' })).toEqual([revoked.nodeId]);
  });

  it('healthState: online, degraded and offline (never beaten) are told apart', async () => {
    const owner = await makeParticipant(t.db);
    const online = await node(owner);
    const degraded = await node(owner);
    const offline = await node(owner);
    await heartbeat(t.db, online, { nodeId: online.nodeId, healthState: 'online' });
    await heartbeat(t.db, degraded, { nodeId: degraded.nodeId, healthState: 'degraded' });
    expect(await ids(owner, { healthState: 'online' })).toEqual([online.nodeId]);
    expect(await ids(owner, { healthState: 'degraded' })).toEqual([degraded.nodeId]);
    expect(await ids(owner, { healthState: 'offline' })).toEqual([offline.nodeId]);
  });

  it('capability: a key lookup on declared capabilities', async () => {
    const owner = await makeParticipant(t.db);
    const gpu = await node(owner, { capabilities: { gpu: {}, 'shell.exec': {} } });
    const shell = await node(owner, { capabilities: { 'shell.exec': { version: '1' } } });
    await node(owner);
    expect(await ids(owner, { capability: 'gpu' })).toEqual([gpu.nodeId]);
    expect(await ids(owner, { capability: 'shell.exec' })).toEqual(
      [gpu.nodeId, shell.nodeId].sort(),
    );
    expect(await ids(owner, { capability: 'camera' })).toEqual([]);
  });

  it('nodeType and location: exact matches', async () => {
    const owner = await makeParticipant(t.db);
    const mac = await node(owner, { nodeType: 'desktop', location: 'Berlin' });
    const gateway = await node(owner, { nodeType: 'gateway', location: 'Berlin' });
    await node(owner, { nodeType: 'desktop' });
    expect(await ids(owner, { nodeType: 'gateway' })).toEqual([gateway.nodeId]);
    expect(await ids(owner, { location: 'Berlin' })).toEqual([mac.nodeId, gateway.nodeId].sort());
    expect(await ids(owner, { nodeType: 'desktop', location: 'Berlin' })).toEqual([mac.nodeId]);
    expect(await ids(owner, { location: 'berlin' })).toEqual([]);
  });

  it('label "k=v" matches the exact value, label "k" matches presence of the key', async () => {
    const owner = await makeParticipant(t.db);
    const prod = await node(owner, { labels: { env: 'prod', rack: 'r1' } });
    const dev = await node(owner, { labels: { env: 'dev' } });
    const blank = await node(owner, { labels: { env: '' } });
    await node(owner, { labels: { team: 'env' } });
    expect(await ids(owner, { label: 'env=prod' })).toEqual([prod.nodeId]);
    expect(await ids(owner, { label: 'env=prod=x' })).toEqual([]);
    expect(await ids(owner, { label: 'env=' })).toEqual([blank.nodeId]);
    expect(await ids(owner, { label: 'env' })).toEqual(
      [prod.nodeId, dev.nodeId, blank.nodeId].sort(),
    );
    expect(await ids(owner, { label: 'rack=r1' })).toEqual([prod.nodeId]);
  });

  it('label with an invalid key → request.invalid naming the field', async () => {
    const owner = await makeParticipant(t.db);
    const e = await expectTetherError(
      listNodes(t.db, owner, { label: '=prod' }),
      'request.invalid',
    );
    expect(e.details).toEqual({ field: 'label' });
  });

  it('search: case-insensitive substring of node id or name; LIKE wildcards match literally', async () => {
    const owner = await makeParticipant(t.db);
    const tag = randomBytes(3).toString('hex');
    const byName = await node(owner, { name: `Kitchen Mac ${tag}` });
    const byId = await node(owner, { nodeId: `studio-${tag}-box`, name: 'box' });
    const percent = await node(owner, { name: '100% busy' });
    expect(await ids(owner, { search: 'KITCHEN' })).toEqual([byName.nodeId]);
    expect(await ids(owner, { search: `STUDIO-${tag.toUpperCase()}` })).toEqual([byId.nodeId]);
    expect(await ids(owner, { search: tag })).toEqual([byName.nodeId, byId.nodeId].sort());
    expect(await ids(owner, { search: '%' })).toEqual([percent.nodeId]);
    expect(await ids(owner, { search: '_' })).toEqual([]);
  });

  it('sessionId: nodes attached to the session in any state, for members and admins; others get an empty page', async () => {
    const owner = await makeParticipant(t.db);
    const viewer = await makeParticipant(t.db);
    const stranger = await makeParticipant(t.db);
    const admin = await makeParticipant(t.db, 'admin');
    const session = await makeSession(t.db, owner);
    await addMemberAs(t.db, owner, session, viewer, 'viewer');
    const active = await node(owner);
    const detached = await node(owner);
    await node(owner); // never attached
    await attach(t.db, active, attachInput(active, session));
    await attach(t.db, detached, attachInput(detached, session));
    await detach(t.db, detached, { nodeId: detached.nodeId });

    const attached = [active.nodeId, detached.nodeId].sort();
    expect(await ids(owner, { sessionId: session })).toEqual(attached);
    expect(await ids(viewer, { sessionId: session })).toEqual(attached);
    expect(await ids(admin, { sessionId: session })).toEqual(attached);
    // The owner of the nodes is not a member of this one: the filter still answers nothing.
    const ownerOfNodes = await makeParticipant(t.db);
    const foreign = await node(ownerOfNodes);
    await addMemberAs(t.db, owner, session, ownerOfNodes, 'collaborator');
    await attach(t.db, foreign, attachInput(foreign, session));
    await t.db.query(
      `UPDATE session_memberships SET state = 'suspended' WHERE session_id = $1 AND participant_id = $2`,
      [session, ownerOfNodes.participantId],
    );
    expect(await ids(ownerOfNodes, { sessionId: session })).toEqual([]);
    expect(await ids(stranger, { sessionId: session })).toEqual([]);
  });

  it('filters combine (AND)', async () => {
    const owner = await makeParticipant(t.db);
    const both = await node(owner, { labels: { env: 'prod' }, capabilities: { gpu: {} } });
    await node(owner, { labels: { env: 'prod' } });
    await node(owner, { capabilities: { gpu: {} } });
    await heartbeat(t.db, both, { nodeId: both.nodeId, healthState: 'online' });
    expect(
      await ids(owner, {
        label: 'env=prod',
        capability: 'gpu',
        healthState: 'online',
        status: 'active',
      }),
    ).toEqual([both.nodeId]);
  });
});

describe('node.list pagination', () => {
  it('120 nodes, limit 50 → pages of 50, 50, 20 in node_id order, no duplicates, no gaps', async () => {
    const owner = await makeParticipant(t.db);
    const prefix = uniqueName('page');
    // Inserted in a scrambled order (37 is coprime to 120): pages follow node_id, not insertion.
    const numbers = Array.from({ length: 120 }, (_, i) => (i * 37) % 120);
    for (const i of numbers)
      await node(owner, { nodeId: `${prefix}-${String(i).padStart(3, '0')}` });
    const { rows } = await t.db.query<{ node_id: string }>(
      `SELECT node_id FROM nodes WHERE owner_participant_id = $1 ORDER BY node_id`,
      [owner.participantId],
    );

    const pages: NodeId[][] = [];
    let cursor: string | undefined;
    do {
      const page = await listNodes(t.db, owner, { limit: 50, ...(cursor ? { cursor } : {}) });
      pages.push(page.items.map((n) => n.nodeId));
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);

    expect(pages.map((p) => p.length)).toEqual([50, 50, 20]);
    const all = pages.flat();
    expect(new Set(all).size).toBe(120);
    expect(all).toEqual(rows.map((r) => r.node_id));
    expect(all[0]).toBe(`${prefix}-000`);
    expect(all[119]).toBe(`${prefix}-119`);
  });

  it('keyset: a node inserted before the cursor does not shift the next page (no duplicates)', async () => {
    const owner = await makeParticipant(t.db);
    const prefix = uniqueName('ks');
    for (const i of [1, 3, 5, 7]) await node(owner, { nodeId: `${prefix}-${i}` });
    const first = await listNodes(t.db, owner, { limit: 2 });
    expect(first.items.map((n) => n.nodeId)).toEqual([`${prefix}-1`, `${prefix}-3`]);
    await node(owner, { nodeId: `${prefix}-2` });
    const second = await listNodes(t.db, owner, { limit: 2, cursor: first.nextCursor! });
    expect(second.items.map((n) => n.nodeId)).toEqual([`${prefix}-5`, `${prefix}-7`]);
    expect(second.nextCursor).toBeNull();
  });

  it('a cursor this server did not issue → request.invalid', async () => {
    const owner = await makeParticipant(t.db);
    for (const cursor of [
      'not-a-cursor',
      encodeCursor('node', ['a', 'b']),
      encodeCursor('session', ['a']),
      Buffer.from('{"x":1}').toString('base64url'),
    ]) {
      const e = await expectTetherError(listNodes(t.db, owner, { cursor }), 'request.invalid');
      expect(e.httpStatus).toBe(400);
    }
  });
});
