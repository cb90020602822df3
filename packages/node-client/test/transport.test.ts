/**
 * A connection's sockets end with it: one tRPC opens after `dispose()` (it opens a few
 * microtasks after being asked) is terminated at birth instead of living until its handshake
 * deadline, watched by the process's keep-alive.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { withIdleConnection } from './idle-connection.js';

describe('Connection.dispose', () => {
  it('no socket outlives a connection disposed before its socket was opened', async () => {
    await withIdleConnection(async (connection) => {
      await connection.dispose(false);
      // Every microtask tRPC queued has run, and the close of a socket terminated while
      // connecting (emitted on the next tick) has too.
      await nextTurn();
      await nextTurn();
      expect(connection.openSockets).toBe(0);
    });
  });
});
