/**
 * `callOn` on a real `Connection`: a call listens for the connection's loss only while it is in
 * flight (thousands of finished calls leave nothing behind on a long-lived connection), and a
 * call in flight when the connection is lost fails with `ConnectionLost` and its cause, once.
 */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { ConnectionLost, callOn } from '../src/call.js';
import { Connection } from '../src/transport.js';

async function withConnection(work: (connection: Connection) => Promise<void>): Promise<void> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  const port = (wss.address() as { port: number }).port;
  const connection = new Connection({
    url: `http://127.0.0.1:${port}`,
    token: 'tnd_call_test_token',
    handshakeTimeoutMs: 600_000,
    keepAliveIntervalMs: 600_000,
    pongTimeoutMs: 600_000,
  });
  try {
    await work(connection);
  } finally {
    await connection.dispose(false);
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
  }
}

describe('callOn', () => {
  it('finished calls leave no loss listener behind on their connection', async () => {
    await withConnection(async (connection) => {
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
    await withConnection(async (connection) => {
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
