/**
 * A graceful stop (what SIGTERM runs) ends the node's command stream in a way its client recovers
 * from: after the server comes back on the same address, the node's WebSocket client is
 * subscribed again by itself and receives a command invoked there.
 */
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { freePort } from '../postgres.js';
import { startTestServer } from '../server.js';
import { participant } from '../wire/actors.js';
import { commandNode, deliveredIds, getCommand, invokeOk, wsNode } from './helpers.js';

describe('graceful restart', () => {
  it("the node's stream resumes on the restarted server", async () => {
    const database = await createTestDatabase();
    const env = { TETHER_PORT: String(await freePort()) };
    let server = await startTestServer({ databaseUrl: database.url, env });
    const owner = await participant(server);
    const node = await commandNode(server, owner, { ping: {} });
    const live = wsNode(server.wsUrl, node);
    try {
      await live.opened;
      const before = await invokeOk(server, owner, {
        target: { nodeId: node.nodeId },
        capability: 'ping',
      });
      await eventually(
        () => getCommand(server, owner, before.commandId),
        (c) => c.state === 'succeeded',
      );
      await server.stop();
      server = await startTestServer({ databaseUrl: database.url, env });
      const after = await invokeOk(server, owner, {
        target: { nodeId: node.nodeId },
        capability: 'ping',
      });
      await eventually(
        () => getCommand(server, owner, after.commandId),
        (c) => c.state === 'succeeded',
      );
      expect(deliveredIds(live.messages)).toEqual([before.commandId, after.commandId]);
    } finally {
      await live.close();
      await server.stop();
      await database.drop();
    }
  }, 60_000);
});
