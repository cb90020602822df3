/**
 * `createTetherClient`: a typed tRPC client for Tether, with the links set up the tRPC way.
 *  - `transport: 'http'` (default): queries and mutations batched over HTTP (`httpBatchLink`),
 *    subscriptions over Server-Sent Events (`httpSubscriptionLink`), joined by `splitLink`.
 *  - `transport: 'ws'`: every call over one WebSocket (`wsLink`), authenticated once at connect.
 * Every link speaks superjson (Dates arrive as `Date`), sends the token (the `authorization`
 * header; `connectionParams.token` where headers cannot be set: EventSource, WebSocket) and
 * announces the contract version it was built against (`x-tether-client-version` or
 * `connectionParams.clientVersion`), which the server refuses when its MAJOR is higher.
 * Subscriptions resume by themselves: tRPC sends the last `tracked()` id back as `lastEventId`.
 */
import { CONTRACT_VERSION } from '@tether/contracts';
import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  wsLink,
  type TRPCClient,
  type TRPCLink,
  type TRPCWebSocketClient,
  type WebSocketClientOptions,
} from '@trpc/client';
import superjson from 'superjson';
import type { AppRouter } from './router.js';

const DEFAULT_MAX_BATCH_CALLS = 20;
const MAX_URL_LENGTH = 8_000;

/** The typed client: `client.session.create.mutate(…)`, `client.fleet.events.subscribe(…)`. */
export type TetherClient = TRPCClient<AppRouter>;

export type TetherTransport = 'http' | 'ws';

/** Anything constructible like the DOM `EventSource` (e.g. the `eventsource` package on Node). */
export type EventSourceConstructor = new (
  url: string,
  init?: { withCredentials?: boolean },
) => EventSource;

export interface TetherConnectionOptions {
  /** The server's base URL, `http(s)://host[:port][/prefix]`; the API is at `<url>/trpc`. */
  url: string;
  /** A participant token (`tpt_…`) or node token; omit it for the public calls. */
  token?: string | undefined;
  /** The contract version to announce (`MAJOR.MINOR`); defaults to this package's. */
  clientVersion?: string | undefined;
}

export interface TetherWSClientOptions extends TetherConnectionOptions {
  /** The WebSocket class where there is no global one (on Node 20: the `ws` package's). */
  WebSocket?: typeof WebSocket | undefined;
  /** Client pings; on by default (5 s interval, 1 s to answer), so a dead link is noticed. */
  keepAlive?: WebSocketClientOptions['keepAlive'];
  /** Delay before reconnect attempt `n` (tRPC's default: exponential backoff up to 30 s). */
  retryDelayMs?: WebSocketClientOptions['retryDelayMs'];
  onOpen?: WebSocketClientOptions['onOpen'];
  onClose?: WebSocketClientOptions['onClose'];
  onError?: WebSocketClientOptions['onError'];
  /** Close the socket while idle (tRPC's lazy mode). */
  lazy?: WebSocketClientOptions['lazy'];
}

export interface CreateTetherClientOptions extends TetherWSClientOptions {
  /** `'http'` (default): HTTP batching + Server-Sent Events. `'ws'`: everything over a WebSocket. */
  transport?: TetherTransport | undefined;
  /**
   * `transport: 'ws'` over a socket you made with `createTetherWSClient` (so you can `close()`
   * it); otherwise the client opens its own from the options above.
   */
  wsClient?: TRPCWebSocketClient | undefined;
  /** The EventSource class for subscriptions over HTTP where there is no global one. */
  EventSource?: EventSourceConstructor | undefined;
  /**
   * Over HTTP, at most this many calls share one batched request (default 20; the server refuses
   * batches above `TETHER_MAX_BATCH_CALLS`, 50 by default), and a batched GET's URL stays under
   * 8 000 characters: more calls go in further requests.
   */
  maxBatchCalls?: number | undefined;
}

/**
 * Where the API is, from the server's base URL `http(s)://host[:port][/prefix]`: the base without
 * trailing slashes, `<base>/trpc`, and `ws(s)://…/trpc`. Throws a TypeError for anything else.
 */
export function tetherEndpoints(url: string): { base: string; http: string; ws: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`the server URL must be http:// or https:// (got ${parsed.protocol})`);
  }
  const base = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  return { base, http: `${base}/trpc`, ws: `${base.replace(/^http/, 'ws')}/trpc` };
}

/** The token and client version as tRPC connection params (WebSocket connect, SSE URL). */
function connectionParams(options: TetherConnectionOptions): Record<string, string> {
  return {
    clientVersion: options.clientVersion ?? CONTRACT_VERSION,
    ...(options.token !== undefined ? { token: options.token } : {}),
  };
}

/**
 * A tRPC WebSocket client authenticated with `token` (sent once, in the connection params).
 * Close it with `close()`; pass it to `createTetherClient({ transport: 'ws', wsClient })`.
 */
export function createTetherWSClient(options: TetherWSClientOptions): TRPCWebSocketClient {
  const params = connectionParams(options);
  return createWSClient({
    url: tetherEndpoints(options.url).ws,
    connectionParams: params,
    keepAlive: options.keepAlive ?? { enabled: true },
    ...(options.WebSocket !== undefined ? { WebSocket: options.WebSocket } : {}),
    ...(options.retryDelayMs !== undefined ? { retryDelayMs: options.retryDelayMs } : {}),
    ...(options.onOpen !== undefined ? { onOpen: options.onOpen } : {}),
    ...(options.onClose !== undefined ? { onClose: options.onClose } : {}),
    ...(options.onError !== undefined ? { onError: options.onError } : {}),
    ...(options.lazy !== undefined ? { lazy: options.lazy } : {}),
  });
}

/**
 * The links `createTetherClient` uses, for integrations that take links rather than a client
 * (e.g. `@trpc/tanstack-react-query`).
 */
export function tetherLinks(options: CreateTetherClientOptions): TRPCLink<AppRouter>[] {
  if (options.transport === 'ws') {
    const client = options.wsClient ?? createTetherWSClient(options);
    return [wsLink<AppRouter>({ client, transformer: superjson })];
  }
  const endpoints = tetherEndpoints(options.url);
  const headers: Record<string, string> = {
    'x-tether-client-version': options.clientVersion ?? CONTRACT_VERSION,
    ...(options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {}),
  };
  const params = connectionParams(options);
  return [
    splitLink<AppRouter>({
      condition: (op) => op.type === 'subscription',
      // EventSource cannot send headers: the token travels in the connection params.
      true: httpSubscriptionLink<AppRouter, EventSourceConstructor>({
        url: endpoints.http,
        transformer: superjson,
        connectionParams: params,
        ...(options.EventSource !== undefined ? { EventSource: options.EventSource } : {}),
      }),
      false: httpBatchLink<AppRouter>({
        url: endpoints.http,
        transformer: superjson,
        headers,
        maxItems: options.maxBatchCalls ?? DEFAULT_MAX_BATCH_CALLS,
        maxURLLength: MAX_URL_LENGTH,
      }),
    }),
  ];
}

/** The typed Tether client. */
export function createTetherClient(options: CreateTetherClientOptions): TetherClient {
  return createTRPCClient<AppRouter>({ links: tetherLinks(options) });
}
