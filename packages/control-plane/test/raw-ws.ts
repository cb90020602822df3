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

export type RawSocket =
  | {
      kind: 'open';
      ws: WebSocket;
      /** Resolves with the close code and reason. */
      closed: Promise<{ code: number; reason: string }>;
      /** Sends tRPC's connectionParams message (a token only if given). */
      sendConnectionParams(params: Record<string, string>): void;
      close(): Promise<void>;
    }
  | {
      kind: 'refused';
      status: number;
      headers: Record<string, string | string[] | undefined>;
      body: string;
    };

/**
 * A bare WebSocket that sends nothing on its own, not even connectionParams, but answers tRPC's
 * keep-alive (`PING` → `PONG`), as a client holding sockets open on purpose would: for the
 * server's deadlines and caps on unauthenticated sockets. An upgrade the server refuses
 * resolves as `refused`, with the HTTP answer.
 */
export async function rawSocket(
  wsUrl: string,
  options: { connectionParams?: boolean } = {},
): Promise<RawSocket> {
  const ws = new WebSocket(
    options.connectionParams === false ? wsUrl : `${wsUrl}?connectionParams=1`,
  );
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })),
  );
  ws.on('message', (data: Buffer) => {
    if (data.toString('utf8') === 'PING') ws.send('PONG');
  });
  return new Promise<RawSocket>((resolve, reject) => {
    ws.once('open', () =>
      resolve({
        kind: 'open',
        ws,
        closed,
        sendConnectionParams: (params) =>
          ws.send(JSON.stringify({ method: 'connectionParams', data: params })),
        close: async () => {
          if (ws.readyState === WebSocket.CLOSED) return;
          ws.close();
          await closed;
        },
      }),
    );
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ kind: 'refused', status: res.statusCode ?? 0, headers: res.headers, body });
        ws.terminate();
      });
    });
    // A refused handshake is aborted by us above; ws then reports that as an error too.
    ws.on('error', (error) => reject(error));
  });
}
