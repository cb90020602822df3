/**
 * A connection's sockets end with it: one tRPC opens after `dispose()` (it opens a few
 * microtasks after being asked) is terminated at birth instead of living until its handshake
 * deadline, watched by the process's keep-alive.
 */
import { once } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { Connection } from '../src/transport.js';

describe('Connection.dispose', () => {
  it('no socket outlives a connection disposed before its socket was opened', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    const port = (wss.address() as { port: number }).port;
    try {
      const connection = new Connection({
        url: `http://127.0.0.1:${port}`,
        token: 'tnd_transport_test_token',
        handshakeTimeoutMs: 600_000,
        keepAliveIntervalMs: 600_000,
        pongTimeoutMs: 600_000,
      });
      await connection.dispose(false);
      // Every microtask tRPC queued has run, and the close of a socket terminated while
      // connecting (emitted on the next tick) has too.
      await nextTurn();
      await nextTurn();
      expect(connection.openSockets).toBe(0);
    } finally {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});
