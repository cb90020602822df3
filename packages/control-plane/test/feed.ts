/**
 * Dashboard-like subscribers of `fleet.events` for tests: over a real WebSocket (wsLink) or
 * over SSE (httpSubscriptionLink with an EventSource implementation), collecting what arrives.
 */
import type { FleetEventView, FleetEventsInput } from '@tether/contracts';
import {
  createTRPCClient,
  createWSClient,
  httpSubscriptionLink,
  TRPCClientError,
  wsLink,
  type TRPCClient,
} from '@trpc/client';
import { EventSource } from 'eventsource';
import superjson from 'superjson';
import WebSocket from 'ws';
import type { AppRouter } from '../src/trpc/root.js';

export interface Collected {
  events: FleetEventView[];
  /** The Tether error code the subscription ended with, if any. */
  error: string | null;
  /** Resolves once `predicate` holds for the collected events (checked on every arrival). */
  until(predicate: (events: FleetEventView[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves when the subscription reported an error. */
  failed: Promise<string>;
  /** Resolves when the server said the subscription started (tRPC's `started`). */
  started: Promise<void>;
  close(): Promise<void>;
}

function tetherCode(error: unknown): string {
  if (error instanceof TRPCClientError) {
    const data = error.data as { tetherError?: { code: string } } | undefined;
    return data?.tetherError?.code ?? `trpc:${String(error.message)}`;
  }
  return String(error);
}

function collect(
  client: TRPCClient<AppRouter>,
  input: FleetEventsInput,
  dispose: () => Promise<void>,
): Collected {
  const events: FleetEventView[] = [];
  const waiters = new Set<() => void>();
  let resolveFailed: (code: string) => void = () => undefined;
  const failed = new Promise<string>((r) => (resolveFailed = r));
  let resolveStarted: () => void = () => undefined;
  const started = new Promise<void>((r) => (resolveStarted = r));
  const result: Collected = {
    events,
    error: null,
    failed,
    started,
    until: (predicate, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (predicate(events)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `subscription condition not met in ${timeoutMs} ms; got ${events.length} events` +
                (result.error ? `, error ${result.error}` : '') +
                `: ${JSON.stringify(events.slice(-5))}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: async () => {
      subscription.unsubscribe();
      await dispose();
    },
  };
  const subscription = client.fleet.events.subscribe(input, {
    onStarted: () => resolveStarted(),
    onData: (tracked) => {
      events.push(tracked.data);
      for (const waiter of [...waiters]) waiter();
    },
    onError: (error) => {
      result.error = tetherCode(error);
      resolveFailed(result.error);
    },
  });
  return result;
}

/** `fleet.events` over a WebSocket authenticated with connectionParams. */
export function subscribeWs(wsUrl: string, token: string, input: FleetEventsInput = {}): Collected {
  const ws = createWSClient({
    url: wsUrl,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: { token },
    retryDelayMs: () => 60_000,
  });
  const client = createTRPCClient<AppRouter>({
    links: [wsLink({ client: ws, transformer: superjson })],
  });
  return collect(client, input, () => ws.close());
}

/** `fleet.events` over SSE; the token travels in tRPC's connectionParams (URL). */
export function subscribeSse(url: string, token: string, input: FleetEventsInput = {}): Collected {
  const client = createTRPCClient<AppRouter>({
    links: [
      httpSubscriptionLink({
        url: `${url}/trpc`,
        EventSource,
        transformer: superjson,
        connectionParams: { token },
      }),
    ],
  });
  return collect(client, input, () => Promise.resolve());
}

/** Ids must be strictly increasing and unique. */
export function assertOrdered(events: FleetEventView[]): void {
  for (let i = 1; i < events.length; i++) {
    if (BigInt(events[i]!.id) <= BigInt(events[i - 1]!.id)) {
      throw new Error(`events out of order at ${i}: ${events[i - 1]!.id} then ${events[i]!.id}`);
    }
  }
}
