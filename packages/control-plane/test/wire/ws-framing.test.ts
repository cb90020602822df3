/**
 * The tRPC WebSocket framing that docs/api.md shows to non-TypeScript daemons, spoken by hand:
 * literal JSON frames (superjson's `{ json, meta? }` written out, no tRPC or superjson library
 * on the client side), so the documented frames stay the real ones.
 */
import { once } from 'node:events';
import { CONTRACT_VERSION } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer } from '../server.js';
import { nodeOf, participant, sessionOf } from './actors.js';

type Frame = Record<string, unknown>;

interface Socket {
  send(frame: Frame | string): void;
  /** The next frame answering `id` (or a text frame such as PONG when id is a string). */
  next(match: (frame: Frame | string) => boolean): Promise<Frame | string>;
  close(): Promise<void>;
}

async function connect(wsUrl: string, token: string): Promise<Socket> {
  const ws = new WebSocket(`${wsUrl}?connectionParams=1`);
  await once(ws, 'open');
  const received: (Frame | string)[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data: Buffer) => {
    const text = data.toString('utf8');
    received.push(text.startsWith('{') ? (JSON.parse(text) as Frame) : text);
    for (const wake of [...waiters]) wake();
  });
  const socket: Socket = {
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    next: (match) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const index = received.findIndex(match);
          if (index < 0) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(received.splice(index, 1)[0]!);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching frame; received ${JSON.stringify(received)}`));
        }, 10_000);
        waiters.add(check);
        check();
      }),
    close: async () => {
      ws.close();
      await once(ws, 'close');
    },
  };
  // The first frame authenticates the connection (the URL's connectionParams=1 announces it).
  socket.send({ method: 'connectionParams', data: { token, clientVersion: CONTRACT_VERSION } });
  return socket;
}

const answer = (id: number | string) => (f: Frame | string) => typeof f === 'object' && f.id === id;

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('tRPC WebSocket frames for non-TypeScript daemons (superjson)', () => {
  it('connectionParams, mutations in {json}, results as {json, meta}, errors, PING/PONG', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const sessionId = await sessionOf(server, owner);
    const daemon = await connect(server.wsUrl, node.token);

    daemon.send({
      id: 1,
      method: 'mutation',
      params: {
        path: 'runtimenode.attach',
        input: {
          json: {
            sessionId,
            participantId: owner.participantId,
            nodeId: node.nodeId,
            nodeVersion: CONTRACT_VERSION,
            capabilities: {},
            healthState: 'online',
          },
        },
      },
    });
    const attached = (await daemon.next(answer(1))) as Frame;
    const result = (attached as { result: { data: { json: Record<string, unknown> } } }).result;
    const { attachmentId, attachedAt, ...rest } = result.data.json;
    expect(attachmentId).toMatch(/^[0-9a-f-]{36}$/);
    expect(attachedAt).toMatch(ISO);
    expect(attached).toEqual({
      id: 1,
      result: {
        type: 'data',
        data: {
          json: { attachmentId, attachedAt, ...rest },
          meta: { values: { attachedAt: ['Date'] }, v: 1 },
        },
      },
    });
    expect(rest).toEqual({ state: 'registering', readOnly: false });

    // An error: the formatted tRPC error, itself in superjson's envelope.
    daemon.send({
      id: 2,
      method: 'mutation',
      params: {
        path: 'runtimenode.capabilityupdate',
        input: {
          json: { nodeId: node.nodeId, capabilities: {}, healthChanges: { state: 'online' } },
        },
      },
    });
    const refused = (await daemon.next(answer(2))) as { error: { json: Frame } };
    expect(refused.error.json).toMatchObject({
      code: -32009,
      data: {
        code: 'CONFLICT',
        httpStatus: 409,
        path: 'runtimenode.capabilityupdate',
        tetherError: { code: 'runtimenode.capabilityupdate_conflict' },
      },
    });

    daemon.send({
      id: 3,
      method: 'mutation',
      params: {
        path: 'runtimenode.capabilityupdate',
        input: {
          json: {
            nodeId: node.nodeId,
            capabilities: { gpu: {} },
            healthChanges: { state: 'online' },
          },
        },
      },
    });
    expect(
      ((await daemon.next(answer(3))) as { result: { data: { json: Frame } } }).result.data.json,
    ).toMatchObject({
      state: 'online',
    });

    // A heartbeat (served by the WebSocket fast path: the same frame tRPC would send).
    daemon.send({
      id: 4,
      method: 'mutation',
      params: {
        path: 'runtimenode.heartbeat',
        input: { json: { nodeId: node.nodeId, healthState: 'online' } },
      },
    });
    expect(await daemon.next(answer(4))).toEqual({
      id: 4,
      result: { type: 'data', data: { json: null } },
    });

    daemon.send('PING');
    expect(await daemon.next((f) => f === 'PONG')).toBe('PONG');
    await daemon.close();
  });

  it('a subscription: started, tracked data frames with their id, resume with lastEventId, stopped', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const dashboard = await connect(server.wsUrl, owner.token);
    dashboard.send({
      id: 'feed',
      method: 'subscription',
      params: { path: 'fleet.events', input: { json: { filter: { nodeId: node.nodeId } } } },
    });
    expect(await dashboard.next(answer('feed'))).toEqual({
      id: 'feed',
      result: { type: 'started' },
    });

    // The node's socket binds presence: offline → online.
    const daemon = await connect(server.wsUrl, node.token);
    const event = (await dashboard.next(answer('feed'))) as {
      result: {
        type: string;
        id: string;
        data: { json: { id: string; data: Frame }; meta: Frame };
      };
    };
    expect(event.result.type).toBe('data');
    expect(event.result.id).toMatch(/^[1-9][0-9]*$/);
    expect(event.result.data.json.id).toBe(event.result.id);
    expect(event.result.data.json.data).toMatchObject({
      id: event.result.id,
      type: 'presence.changed',
      nodeId: node.nodeId,
      data: { to: 'online' },
    });
    expect(event.result.data.json.data.at).toMatch(ISO);
    expect(event.result.data.meta).toEqual({ values: { 'data.at': ['Date'] }, v: 1 });

    dashboard.send({ id: 'feed', method: 'subscription.stop' });
    expect(await dashboard.next(answer('feed'))).toEqual({
      id: 'feed',
      result: { type: 'stopped' },
    });

    // Missed while stopped: the node goes away. Resume after the last id seen.
    await daemon.close();
    dashboard.send({
      id: 'again',
      method: 'subscription',
      params: {
        path: 'fleet.events',
        input: { json: { filter: { nodeId: node.nodeId } } },
        lastEventId: event.result.id,
      },
    });
    expect(await dashboard.next(answer('again'))).toEqual({
      id: 'again',
      result: { type: 'started' },
    });
    const missed = (await dashboard.next(answer('again'))) as typeof event;
    expect(BigInt(missed.result.id)).toBeGreaterThan(BigInt(event.result.id));
    expect(missed.result.data.json.data).toMatchObject({
      type: 'presence.changed',
      data: { to: 'offline' },
    });
    await dashboard.close();
  });
});
