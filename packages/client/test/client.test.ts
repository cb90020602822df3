/**
 * createTetherClient through the real wire (a real server on a real PostgreSQL): typed calls
 * over batched HTTP and over a WebSocket, the live feed over Server-Sent Events and over the
 * WebSocket (token in the connection params), the client version announced on every transport,
 * typed errors, and resumption after a lost connection.
 */
import type { NodeId, ParticipantId } from '@tether/contracts';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  createTetherClient,
  createTetherWSClient,
  isTetherError,
  type CreateTetherClientOptions,
  type FleetEventView,
  type TetherClient,
  type TrackedEvent,
} from '../src/index.js';
import {
  eventually,
  nodeOf,
  startTestServer,
  type TestServer,
} from '@tether/control-plane/testing';

/** Waits for a state the client reaches on its own (polls; not a sleep). */
const until = (condition: () => boolean): Promise<boolean> =>
  eventually(
    () => Promise.resolve(condition()),
    (ok) => ok,
  );

let server: TestServer;
let nodeId: NodeId;

/** Node 20 has neither a global WebSocket nor EventSource: the usual packages stand in. */
const NODE_GLOBALS = {
  WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
  EventSource,
};

function client(options: Partial<CreateTetherClientOptions> = {}): TetherClient {
  return createTetherClient({
    url: server.url,
    token: server.adminToken,
    ...NODE_GLOBALS,
    ...options,
  });
}

/** Collects the events of a `fleet.events` subscription for one node. */
function watch(c: TetherClient, lastEventId?: string) {
  const events: TrackedEvent<FleetEventView>[] = [];
  const errors: unknown[] = [];
  let started = false;
  const subscription = c.fleet.events.subscribe(
    { filter: { nodeId }, ...(lastEventId !== undefined ? { lastEventId } : {}) },
    {
      onStarted: () => (started = true),
      onData: (event) => events.push(event),
      onError: (error) => errors.push(error),
    },
  );
  return {
    events,
    errors,
    get started() {
      return started;
    },
    stop: () => subscription.unsubscribe(),
  };
}

/** A `node.updated` event for the test node (the admin renames it). */
async function touch(name: string): Promise<void> {
  await client().node.update.mutate({ nodeId, name });
}

beforeAll(async () => {
  server = await startTestServer();
  const admin = {
    participantId: server.adminParticipantId as ParticipantId,
    token: server.adminToken,
  };
  nodeId = (await nodeOf(server, admin)).nodeId;
});

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
});

describe('createTetherClient over the wire', () => {
  it('http: typed queries and mutations (batched), bearer token, public calls without one', async () => {
    const admin = client();
    const [created, info] = await Promise.all([
      admin.session.create.mutate({ name: 'client lab' }),
      createTetherClient({ url: server.url }).system.info.query(),
    ]);
    const fetched = await admin.session.get.query({ sessionId: created.sessionId });
    expect(fetched.name).toBe('client lab');
    // superjson on every link: timestamps are Dates, typed and at run time.
    expect(fetched.createdAt).toBeInstanceOf(Date);
    expect(fetched.createdAt.getTime()).toBe(created.createdAt.getTime());
    expect(info.contractVersion).toMatch(/^\d+\.\d+$/);
  });

  it('http: many calls at once are split into batches the server accepts (a screenful of queries)', async () => {
    const admin = client();
    // More calls in one tick than the server takes in one batch (TETHER_MAX_BATCH_CALLS: 50).
    const views = await Promise.all(
      Array.from({ length: 120 }, () => admin.node.get.query({ nodeId })),
    );
    expect(views).toHaveLength(120);
    expect(new Set(views.map((v) => v.nodeId))).toEqual(new Set([nodeId]));
  });

  it('ws: every call over one authenticated WebSocket', async () => {
    const ws = createTetherWSClient({ url: server.url, token: server.adminToken, ...NODE_GLOBALS });
    try {
      const admin = client({ transport: 'ws', wsClient: ws });
      const created = await admin.session.create.mutate({ name: 'client ws lab' });
      const listed = await admin.session.get.query({ sessionId: created.sessionId });
      expect(listed.sessionId).toBe(created.sessionId);
    } finally {
      await ws.close();
    }
  });

  it('isTetherError narrows to the code the server answered; false for a call that got no answer', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    const error: unknown = await client()
      .session.get.query({ sessionId: missing })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(isTetherError(error)).toBe(true);
    expect(isTetherError(error, 'session.not_found')).toBe(true);
    expect(isTetherError(error, 'node.not_found')).toBe(false);
    if (!isTetherError(error, 'session.not_found')) throw new Error('unreachable');
    expect(error.data.httpStatus).toBe(404);
    expect(error.data.tetherError.code).toBe('session.not_found');

    // Nobody listens on port 9 (discard) here: a transport failure, not a Tether error.
    const unreachable: unknown = await createTetherClient({ url: 'http://127.0.0.1:9' })
      .system.info.query()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(unreachable).toBeInstanceOf(Error);
    expect(isTetherError(unreachable)).toBe(false);
  });

  it('the client version is announced on every transport: a MAJOR above the server’s is refused', async () => {
    const future = { clientVersion: '999.0' };
    const http = await client(future)
      .session.list.query()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(isTetherError(http, 'version.ceiling_exceeded')).toBe(true);

    const ws = createTetherWSClient({
      url: server.url,
      token: server.adminToken,
      ...NODE_GLOBALS,
      ...future,
    });
    try {
      const overWs = await client({ transport: 'ws', wsClient: ws })
        .session.list.query()
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(isTetherError(overWs, 'version.ceiling_exceeded')).toBe(true);
    } finally {
      await ws.close();
    }

    const sse = watch(client(future));
    try {
      await until(() => sse.errors.length === 1);
      expect(isTetherError(sse.errors[0], 'version.ceiling_exceeded')).toBe(true);
    } finally {
      sse.stop();
    }
  });

  for (const transport of ['http', 'ws'] as const) {
    it(`${transport}: fleet.events delivers typed, tracked events (token in the connection params)`, async () => {
      const ws =
        transport === 'ws'
          ? createTetherWSClient({ url: server.url, token: server.adminToken, ...NODE_GLOBALS })
          : undefined;
      const feed = watch(client({ transport, ...(ws ? { wsClient: ws } : {}) }));
      try {
        await until(() => feed.started);
        await touch(`renamed over ${transport}`);
        await until(() => feed.events.length === 1);
        const [event] = feed.events;
        expect(event?.id).toBe(event?.data.id);
        expect(event?.data).toMatchObject({ type: 'node.updated', nodeId });
        expect(event?.data.at).toBeInstanceOf(Date);
        expect(feed.errors).toEqual([]);
      } finally {
        feed.stop();
        await ws?.close();
      }
    });
  }

  it('ws: after the connection is lost, the subscription resumes from its last event id (missed events once, none twice)', async () => {
    const sockets: WebSocket[] = [];
    let away = false;
    // While `away`, reconnect attempts go nowhere (nothing listens on port 9): the client is
    // certainly disconnected while the next event happens.
    class Tracked extends WebSocket {
      constructor(address: string | URL, protocols?: string | string[]) {
        super(away ? 'ws://127.0.0.1:9/trpc' : address, protocols);
        sockets.push(this);
      }
    }
    const ws = createTetherWSClient({
      url: server.url,
      token: server.adminToken,
      WebSocket: Tracked as unknown as typeof globalThis.WebSocket,
      retryDelayMs: () => 20,
    });
    const feed = watch(client({ transport: 'ws', wsClient: ws }));
    try {
      await until(() => feed.started);
      await touch('before the loss');
      await until(() => feed.events.length === 1);

      away = true;
      sockets[0]?.terminate();
      await until(() => sockets.length >= 2);
      await touch('while away');
      away = false;
      // Only the resume (lastEventId = the first event's id) can deliver it.
      await until(() => feed.events.length === 2);
      await touch('after the reconnect');
      await until(() => feed.events.length === 3);

      expect(feed.events.map((e) => e.data.type)).toEqual([
        'node.updated',
        'node.updated',
        'node.updated',
      ]);
      const ids = feed.events.map((e) => BigInt(e.id));
      expect(ids[0]! < ids[1]! && ids[1]! < ids[2]!).toBe(true);
      expect(feed.errors).toEqual([]);
    } finally {
      feed.stop();
      await ws.close();
    }
  });
});
