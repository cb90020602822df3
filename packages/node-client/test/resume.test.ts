/**
 * Resume in the handshake, from the SDK's side: when the server cannot resume (the attachment
 * ended, the session's floor rose), the node falls back to attach on its own, and what the server
 * did is read from its /metrics and its database, not from the SDK's view.
 */
import { describe, expect, it } from 'vitest';
import {
  enrolled,
  eventually,
  metricTotal,
  nextEvent,
  operator,
  seed,
  sessionNode,
  startTestServer,
} from './support.js';

describe('resume fallbacks', () => {
  it('the attachment ended while the node was away: not resumed, it attaches again (same attachment row) and is online', async () => {
    await using server = await startTestServer();
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = sessionNode(credentials, sessionId);
    await node.start();
    await node.waitFor('online');
    const first = node.snapshot().attachment!.attachmentId;

    const lost = nextEvent(node, 'disconnected');
    const attached = nextEvent(node, 'attached');
    node.disconnect('test');
    await lost;
    // Ended while it was away (as a sweep or an operator's detach would).
    await server.db.query(`UPDATE runtime_node_attachments SET state = 'offline' WHERE id = $1`, [
      first,
    ]);
    const again = await attached;
    expect(again).toMatchObject({ reconnect: true, resumed: false });
    expect(again.attachment.attachmentId).toBe(first);
    await node.waitFor('online');
    expect(
      await metricTotal(server.url, 'tether_ws_handshakes_total', {
        result: 'not_resumed:attachment_ended',
      }),
    ).toBe(1);
    expect(
      await metricTotal(server.url, 'tether_rpc_requests_total', {
        procedure: 'runtimenode.attach',
      }),
    ).toBe(2);
    const roster = await operator(server.url, server.adminToken).runtimenode.roster.query({
      sessionId,
    });
    expect(roster.nodes).toEqual([expect.objectContaining({ state: 'online', readOnly: false })]);
  });

  it("the session's floor rose above the node while it was away: not resumed, it attaches read-only", async () => {
    await using server = await startTestServer();
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = sessionNode(credentials, sessionId);
    await node.start();
    await node.waitFor('online');
    expect(node.snapshot().readOnly).toBe(false);

    // Raised while it is connected (its attachment keeps what it had), then its socket drops.
    await admin.session.raiseFloor.mutate({ sessionId, minNodeVersion: '99.0' });
    const readOnly = nextEvent(node, 'read_only');
    const attached = nextEvent(node, 'attached');
    node.disconnect('test');
    const again = await attached;
    await readOnly;
    expect(again).toMatchObject({ resumed: false, attachment: { readOnly: true } });
    expect(node.snapshot().readOnly).toBe(true);
    expect(
      await metricTotal(server.url, 'tether_ws_handshakes_total', {
        result: 'not_resumed:floor_raised',
      }),
    ).toBe(1);
    const roster = await eventually(
      () => operator(server.url, server.adminToken).runtimenode.roster.query({ sessionId }),
      (r) => r.nodes[0]?.readOnly === true,
    );
    expect(roster.nodes).toHaveLength(1);
  });
});
