/**
 * A node on a bare WebSocket speaking tRPC's wire messages, so a test controls exactly when it
 * connects, answers keep-alive pings, calls, and goes away. Inputs are sent superjson-encoded
 * (the router's transformer); answers are returned as framed, with `result.data` and `error`
 * decoded back from superjson.
 */
import { once } from 'node:events';
import superjson from 'superjson';
import WebSocket from 'ws';

type Encoded = Parameters<typeof superjson.deserialize>[0];

function decodeFrame(message: Record<string, unknown>): Record<string, unknown> {
  const result = message.result as { type?: string; data?: unknown } | undefined;
  if (result && 'data' in result) {
    return {
      ...message,
      result: { ...result, data: superjson.deserialize(result.data as Encoded) },
    };
  }
  if (message.error !== undefined) {
    return { ...message, error: superjson.deserialize(message.error as Encoded) };
  }
  return message;
}

export interface RawNodeSocket {
  ws: WebSocket;
  /** Resolves with the close code. */
  closed: Promise<number>;
  call(method: 'query' | 'mutation', path: string, input: unknown): Promise<unknown>;
  /** Client-side close (a clean close frame). */
  close(): Promise<void>;
  /** The TCP connection just disappears (no close frame). */
  destroy(): void;
}

export async function rawNodeSocket(
  wsUrl: string,
  token: string,
  options: { answerPings?: boolean } = {},
): Promise<RawNodeSocket> {
  const ws = new WebSocket(`${wsUrl}?connectionParams=1`);
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await once(ws, 'open');
  ws.send(JSON.stringify({ method: 'connectionParams', data: { token, clientVersion: '1.0' } }));
  const pending = new Map<number, (message: unknown) => void>();
  let nextId = 1;
  ws.on('message', (data: Buffer) => {
    const text = data.toString('utf8');
    if (text === 'PING') {
      if (options.answerPings !== false) ws.send('PONG');
      return;
    }
    if (text === 'PONG') return;
    const message = JSON.parse(text) as Record<string, unknown>;
    if (typeof message.id === 'number') pending.get(message.id)?.(decodeFrame(message));
  });
  return {
    ws,
    closed,
    call: (method, path, input) =>
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        ws.send(
          JSON.stringify({ id, method, params: { path, input: superjson.serialize(input) } }),
        );
      }),
    close: async () => {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close();
      await closed;
    },
    destroy: () => ws.terminate(),
  };
}
