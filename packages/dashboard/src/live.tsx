/**
 * The live feed: one `fleet.events` subscription for the whole app (Server-Sent Events through
 * `@tether/client`'s link). Every event batch (at most every 200 ms, so rows change within a
 * second) goes to the cache updater (cache.ts) and to the pages that listen.
 *  - The link itself resumes after a dropped connection, sending the last event id back.
 *  - When the subscription ends (server restart, an error), it is started again after a short
 *    backoff with the last event id this page saw: nothing is missed.
 *  - `events.cursor_expired` (the server no longer has the events after our id): every query is
 *    reloaded and the feed restarts live; the indicator says `reloaded`.
 *  - `auth.unauthenticated` (token revoked or expired): back to sign-in.
 */
import { isTetherError, type FleetEvent } from '@tether/client';
import { useQueryClient } from '@tanstack/react-query';
import { useSubscription } from '@trpc/tanstack-react-query';
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import { REJECTED_TOKEN_MESSAGE } from './messages.js';
import { useAuth } from './auth.js';
import { applyEvents } from './cache.js';
import { useTRPC } from './trpc.js';

export type LiveState = 'live' | 'connecting' | 'offline' | 'reloaded';

type Listener = (events: FleetEvent[]) => void;

interface Live {
  state: LiveState;
  /** Why the feed is not live (the last connection error), if it is not. */
  detail: string | null;
  listen: (listener: Listener) => () => void;
}

const LiveContext = createContext<Live>({
  state: 'connecting',
  detail: null,
  listen: () => () => undefined,
});

export function useLive(): Live {
  return useContext(LiveContext);
}

/** Calls `listener` with each batch of events while the component is mounted. */
export function useFleetEvents(listener: Listener): void {
  const { listen } = useLive();
  const ref = useRef(listener);
  ref.current = listener;
  useEffect(() => listen((events) => ref.current(events)), [listen]);
}

const FLUSH_MS = 200;
const BACKOFF_MS = [500, 1_000, 2_000, 5_000, 10_000];

export function LiveProvider({ children }: { children: ReactNode }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const { signOut } = useAuth();

  const listeners = useRef(new Set<Listener>());
  const pending = useRef<FleetEvent[]>([]);
  const flushTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const lastEventId = useRef<string | null>(null);
  const attempts = useRef(0);
  const [resumeFrom, setResumeFrom] = useState<string | null>(null);
  const resumeFromRef = useRef<string | null>(null);
  resumeFromRef.current = resumeFrom;
  const resetRef = useRef<() => void>(() => undefined);
  const [reloaded, setReloaded] = useState(false);
  const [ended, setEnded] = useState<string | null>(null);
  const [browserOnline, setBrowserOnline] = useState(() => navigator.onLine);

  const flush = useCallback(() => {
    flushTimer.current = null;
    const events = pending.current;
    pending.current = [];
    if (events.length === 0) return;
    applyEvents(queryClient, trpc, events);
    for (const listener of listeners.current) listener(events);
  }, [queryClient, trpc]);

  const restart = useCallback((delayMs: number) => {
    const timer = setTimeout(() => {
      const id = lastEventId.current;
      setEnded(null);
      // A new input subscribes by itself; the same input needs an explicit restart.
      if (id === resumeFromRef.current) resetRef.current();
      else setResumeFrom(id);
    }, delayMs);
    return () => clearTimeout(timer);
  }, []);

  const subscriptionInput = useMemo(
    () => (resumeFrom !== null ? { lastEventId: resumeFrom } : {}),
    [resumeFrom],
  );
  const subscription = useSubscription(
    trpc.fleet.events.subscriptionOptions(subscriptionInput, {
      onStarted: () => {
        attempts.current = 0;
      },
      onData: (tracked) => {
        lastEventId.current = tracked.id;
        pending.current.push(tracked.data);
        flushTimer.current ??= setTimeout(flush, FLUSH_MS);
      },
      onError: (error) => {
        if (isTetherError(error, 'auth.unauthenticated')) {
          signOut(REJECTED_TOKEN_MESSAGE);
          return;
        }
        if (isTetherError(error, 'events.cursor_expired')) {
          // The events after our id are gone: start live from now and reload every view.
          lastEventId.current = null;
          setReloaded(true);
          void queryClient.invalidateQueries();
          setEnded('The event cursor expired; reloading.');
          return;
        }
        setEnded(error.message);
      },
    }),
  );

  resetRef.current = subscription.reset;

  // Restart when the subscription ended (error or the server closed the stream).
  const status = subscription.status;
  useEffect(() => {
    if (status !== 'error' && status !== 'idle') return;
    const delay = BACKOFF_MS[Math.min(attempts.current, BACKOFF_MS.length - 1)]!;
    attempts.current++;
    return restart(lastEventId.current === null && reloaded ? 0 : delay);
  }, [status, restart, reloaded]);

  // After a connection loss with no event seen yet, the link cannot resume: reload instead.
  const wasDisconnected = useRef(false);
  useEffect(() => {
    if (status === 'connecting' && subscription.error !== null) wasDisconnected.current = true;
    if (status === 'pending' && wasDisconnected.current) {
      wasDisconnected.current = false;
      if (lastEventId.current === null) void queryClient.invalidateQueries();
    }
  }, [status, subscription.error, queryClient]);

  useEffect(() => {
    const on = () => setBrowserOnline(true);
    const off = () => setBrowserOnline(false);
    window.addEventListener('online', on);
    window.addEventListener('offline', off);
    return () => {
      window.removeEventListener('online', on);
      window.removeEventListener('offline', off);
      if (flushTimer.current !== null) clearTimeout(flushTimer.current);
    };
  }, []);

  let state: LiveState;
  let detail: string | null = null;
  if (!browserOnline) {
    state = 'offline';
    detail = 'This browser is offline.';
  } else if (status === 'pending') {
    state = reloaded ? 'reloaded' : 'live';
  } else if (status === 'connecting' && subscription.error === null) {
    state = 'connecting';
  } else {
    state = 'offline';
    detail = subscription.error?.message ?? ended;
  }

  const listen = useCallback((listener: Listener) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);
  const value = useMemo(() => ({ state, detail, listen }), [state, detail, listen]);
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

const LABELS: Record<LiveState, string> = {
  live: 'Live',
  connecting: 'Connecting…',
  offline: 'Offline, reconnecting…',
  reloaded: 'Live (reloaded: the event cursor had expired)',
};

export function ConnectionStatus() {
  const { state, detail } = useLive();
  return (
    <span
      className="status"
      data-testid="connection-status"
      data-state={state}
      role="status"
      title={detail ?? undefined}
    >
      <span className="dot" aria-hidden="true" />
      {LABELS[state]}
    </span>
  );
}
