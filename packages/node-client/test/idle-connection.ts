/**
 * A `Connection` to a local WebSocket server that accepts and says nothing, with deadlines far
 * beyond any test (only what the test does ends it); disposed and the server closed after.
 */
import { once } from 'node:events';
import { WebSocketServer } from 'ws';
import { Connection } from '../src/transport.js';

export async function withIdleConnection(
  work: (connection: Connection) => Promise<void>,
): Promise<void> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  const port = (wss.address() as { port: number }).port;
  const connection = new Connection({
    url: `http://127.0.0.1:${port}`,
    token: 'tnd_idle_connection_test_token',
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
