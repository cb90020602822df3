/**
 * `callOn` on a real `Connection`: a call listens for the connection's loss only while it is in
 * flight (thousands of finished calls leave nothing behind on a long-lived connection), and a
 * call in flight when the connection is lost fails with `ConnectionLost` and its cause, once.
 */
import { describe, expect, it } from 'vitest';
import { ConnectionLost, callOn } from '../src/call.js';
import { withIdleConnection } from './idle-connection.js';

describe('callOn', () => {
  it('finished calls leave no loss listener behind on their connection', async () => {
    await withIdleConnection(async (connection) => {
      const results = await Promise.all(
        Array.from({ length: 1_000 }, (_, i) =>
          callOn(connection, 60_000, () => Promise.resolve(i)),
        ),
      );
      expect(results[999]).toBe(999);
      await expect(
        callOn(connection, 60_000, () => Promise.reject(new Error('refused'))),
      ).rejects.toThrow();
      expect(connection.lostListeners).toBe(0);
    });
  });

  it('a call in flight when the connection is lost fails with ConnectionLost and the cause', async () => {
    await withIdleConnection(async (connection) => {
      const never = callOn(connection, 60_000, () => new Promise<never>(() => undefined));
      expect(connection.lostListeners).toBe(1);
      connection.lose({ kind: 'dropped', reason: 'test' });
      const error = await never.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectionLost);
      expect((error as ConnectionLost).loss).toEqual({ kind: 'dropped', reason: 'test' });
      expect(connection.lostListeners).toBe(0);
      // A call on a connection already lost fails at once, without being made.
      let made = false;
      const late = await callOn(connection, 60_000, () => {
        made = true;
        return Promise.resolve();
      }).catch((e: unknown) => e);
      expect(late).toBeInstanceOf(ConnectionLost);
      expect(made).toBe(false);
    });
  });
});
