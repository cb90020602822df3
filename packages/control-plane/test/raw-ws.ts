/**
 * A node on a bare WebSocket speaking tRPC's wire messages, so a test controls exactly when it
 * connects, answers keep-alive pings, calls, and goes away. Inputs are sent superjson-encoded
 * (the router's transformer); answers are returned as framed, with `result.data` and `error`
 * decoded back from superjson.
 */
import { randomBytes } from 'node:crypto';
import { CONTRACT_VERSION } from '@tether/contracts';
import { once } from 'node:events';
import { connect } from 'node:net';
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
  // `answerPings: false` answers neither the server's ping frames nor a text PING.
  const ws = new WebSocket(`${wsUrl}?connectionParams=1`, {
    autoPong: options.answerPings !== false,
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await once(ws, 'open');
  ws.send(
    JSON.stringify({
      method: 'connectionParams',
      data: { token, clientVersion: CONTRACT_VERSION },
    }),
  );
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

/**
 * A client that never answers the server's close frame (nor anything else it does not need),
 * speaking the WebSocket protocol by hand over TCP: after the server's close frame it can keep
 * sending frames, as a misbehaving or malicious client would. No library in between decides
 * for it.
 */
export interface StubbornSocket {
  /** Resolves with the code of the server's close frame (never answered). */
  closeFrame: Promise<number>;
  /** Resolves when the server ends the TCP connection. */
  ended: Promise<void>;
  /**
   * Sends one tRPC call (a masked text frame, input superjson-encoded), whatever state the server
   * thinks we are in.
   */
  send(method: 'query' | 'mutation', path: string, input: unknown): number;
  /** Sends a call and resolves with the server's answer (as framed, still superjson-encoded). */
  call(method: 'query' | 'mutation', path: string, input: unknown): Promise<unknown>;
  destroy(): void;
}

function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const mask = randomBytes(4);
  const length = payload.length;
  const header =
    length < 126
      ? Buffer.from([0x81, 0x80 | length])
      : length < 65_536
        ? Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff])
        : (() => {
            const h = Buffer.alloc(10);
            h[0] = 0x81;
            h[1] = 0x80 | 127;
            h.writeBigUInt64BE(BigInt(length), 2);
            return h;
          })();
  const body = Buffer.alloc(length);
  for (let i = 0; i < length; i++) body[i] = payload[i]! ^ mask[i % 4]!;
  return Buffer.concat([header, mask, body]);
}

export async function stubbornSocket(wsUrl: string, token: string): Promise<StubbornSocket> {
  const url = new URL(wsUrl);
  const tcp = connect(Number(url.port), url.hostname);
  await once(tcp, 'connect');
  const key = randomBytes(16).toString('base64');
  tcp.write(
    `GET ${url.pathname}?connectionParams=1 HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let buffer = Buffer.alloc(0);
  let upgraded = false;
  let resolveUpgrade: () => void = () => undefined;
  let rejectUpgrade: (error: Error) => void = () => undefined;
  const upgrade = new Promise<void>((resolve, reject) => {
    resolveUpgrade = resolve;
    rejectUpgrade = reject;
  });
  let resolveClose: (code: number) => void = () => undefined;
  const closeFrame = new Promise<number>((resolve) => (resolveClose = resolve));
  const ended = new Promise<void>((resolve) => tcp.once('close', () => resolve()));
  tcp.on('error', () => undefined);
  const pending = new Map<number, (message: unknown) => void>();

  const onText = (text: string): void => {
    if (text === 'PING' || text === 'PONG') return;
    const message = JSON.parse(text) as { id?: number };
    if (typeof message.id === 'number') pending.get(message.id)?.(message);
  };
  const parseFrames = (): void => {
    for (;;) {
      if (buffer.length < 2) return;
      const opcode = buffer[0]! & 0x0f;
      let length = buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) return;
        length = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (buffer.length < offset + length) return;
      const payload = buffer.subarray(offset, offset + length);
      buffer = buffer.subarray(offset + length);
      if (opcode === 0x1) onText(payload.toString('utf8'));
      if (opcode === 0x8) resolveClose(payload.length >= 2 ? payload.readUInt16BE(0) : 1005);
    }
  };
  tcp.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    if (!upgraded) {
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString('latin1');
      buffer = buffer.subarray(end + 4);
      if (!head.startsWith('HTTP/1.1 101')) {
        rejectUpgrade(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        return;
      }
      upgraded = true;
      resolveUpgrade();
    }
    parseFrames();
  });
  await upgrade;
  tcp.write(
    maskedTextFrame(
      JSON.stringify({
        method: 'connectionParams',
        data: { token, clientVersion: CONTRACT_VERSION },
      }),
    ),
  );
  let nextId = 1;
  const send = (method: 'query' | 'mutation', path: string, input: unknown): number => {
    const id = nextId++;
    if (!tcp.destroyed)
      tcp.write(
        maskedTextFrame(
          JSON.stringify({ id, method, params: { path, input: superjson.serialize(input) } }),
        ),
      );
    return id;
  };
  return {
    closeFrame,
    ended,
    send,
    call: (method, path, input) =>
      new Promise((resolve) => {
        const id = send(method, path, input);
        pending.set(id, resolve);
      }),
    destroy: () => tcp.destroy(),
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
