/**
 * A node never stays stuck behind its own stale attachment, with the real SDK and a real server:
 * an agent killed without detaching and started again for another session comes online there
 * (its old attachment superseded, with the event saying so); a second copy of a running node is
 * refused while the first runs, says so, and takes over once the first is gone; after an owner's
 * node.detach the node attaches again on its next connection.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { saveCredentials } from '../src/credentials.js';
import type { TetherClient } from '../src/index.js';
import {
  enrolled,
  nextEvent,
  seed,
  spawnAgent,
  startTestServer,
  tempDir,
  testNode,
} from './support.js';

async function detachedEvents(admin: TetherClient, nodeId: string) {
  const page = await admin.fleet.list.query({
    filter: { nodeId, types: ['runtimenode.detached'] },
  });
  return page.items;
}

async function stateIn(admin: TetherClient, sessionId: string, nodeId: string) {
  const roster = await admin.runtimenode.roster.query({ sessionId });
  return roster.nodes.find((n) => n.nodeId === nodeId)?.state;
}

describe('a stale attachment never blocks its own node', () => {
  it('an agent killed without detaching and restarted for S2 comes online in S2; S1 ended as superseded', async () => {
    await using server = await startTestServer();
    const { admin, sessionId: s1, enrollmentKey } = await seed(server.url, server.adminToken);
    const s2 = (await admin.session.create.mutate({ name: `s2 ${randomBytes(3).toString('hex')}` }))
      .sessionId;
    const credentials = await enrolled(server.url, enrollmentKey);
    await using dir = await tempDir();
    const file = join(dir.path, 'node.json');
    await saveCredentials(file, credentials);
    const run = (sessionId: string) =>
      spawnAgent(['run', '--credentials', file, '--session', sessionId, '--capability', 'gpu']);

    const first = run(s1);
    await first.waitForOutput(/: online/);
    const view = await admin.node.get.query({ nodeId: credentials.nodeId });
    expect(view.activeAttachment?.sessionId).toBe(s1);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');

    await using second = run(s2);
    await second.waitForOutput(/: online/);
    expect(second.stdout()).toMatch(/superseded this node's stale attachment/);
    expect(second.stderr()).not.toMatch(/attach refused/);
    expect(await stateIn(admin, s1, credentials.nodeId)).toBe('offline');
    expect(await stateIn(admin, s2, credentials.nodeId)).toBe('online');
    const events = await detachedEvents(admin, credentials.nodeId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      sessionId: s1,
      data: { reason: 'superseded', by: { kind: 'node', nodeId: credentials.nodeId } },
    });
  });

  it('a second copy of a running node is refused (attach_conflict, live) and takes over once the first is gone', async () => {
    await using server = await startTestServer();
    const { admin, sessionId: s1, enrollmentKey } = await seed(server.url, server.adminToken);
    const s2 = (await admin.session.create.mutate({ name: `s2 ${randomBytes(3).toString('hex')}` }))
      .sessionId;
    const credentials = await enrolled(server.url, enrollmentKey);
    await using first = testNode(credentials, { sessionId: s1, capabilities: { gpu: {} } });
    await first.start();
    await first.waitFor('online', { timeoutMs: 10_000 });
    const firstAttachment = first.snapshot().attachment!;

    await using second = testNode(credentials, { sessionId: s2, capabilities: { gpu: {} } });
    const conflict = nextEvent(second, 'attach_conflict');
    await second.start();
    expect(await conflict).toMatchObject({
      attachmentId: firstAttachment.attachmentId,
      sessionId: s1,
      live: true,
    });
    // The second copy does not take over while the first runs; it waits out its backoff.
    await nextEvent(second, 'reconnect_scheduled');
    expect(second.state).not.toBe('online');
    expect(await stateIn(admin, s1, credentials.nodeId)).toBe('online');
    expect(first.state).toBe('online');

    // The first copy goes away without detaching: the second supersedes its attachment once.
    const superseded = nextEvent(second, 'superseded');
    await first.stop({ detach: false });
    expect(await superseded).toEqual(
      expect.objectContaining({ attachmentId: firstAttachment.attachmentId, sessionId: s1 }),
    );
    await second.waitFor('online', { timeoutMs: 10_000 });
    expect(await stateIn(admin, s1, credentials.nodeId)).toBe('offline');
    expect(await stateIn(admin, s2, credentials.nodeId)).toBe('online');
  });

  it("after an owner's node.detach the node attaches again on its next connection", async () => {
    await using server = await startTestServer();
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = testNode(credentials, { sessionId, capabilities: { gpu: {} } });
    await node.start();
    await node.waitFor('online', { timeoutMs: 10_000 });
    const before = node.snapshot().attachment!.attachmentId;

    await admin.node.detach.mutate({ nodeId: credentials.nodeId, reason: 'maintenance' });
    expect(await stateIn(admin, sessionId, credentials.nodeId)).toBe('offline');
    // Still connected and beating: presence stays online, the attachment stays ended…
    expect((await admin.node.isOnline.query({ nodeId: credentials.nodeId })).online).toBe(true);

    // …until the node's next connection, which attaches again (not terminal), and online in
    // the same call (its capabilities are declared).
    const attached = nextEvent(node, 'attached');
    node.disconnect('test: reconnect');
    expect((await attached).attachment).toMatchObject({ attachmentId: before, state: 'online' });
    expect(await stateIn(admin, sessionId, credentials.nodeId)).toBe('online');
  });
});
