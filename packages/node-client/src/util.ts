/** Small pieces shared by the SDK: a typed emitter, a logger interface, abortable waits. */
import { setTimeout as sleep } from 'node:timers/promises';
import { tetherEndpoints } from '@tether/client';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => void;

/**
 * A typed event emitter. A listener that throws is reported to `onListenerError` and never
 * breaks the SDK's own bookkeeping (unlike node:events, there is no special `error` event).
 */
export class Emitter<Events extends { [K in keyof Events]: Listener }> {
  readonly #listeners = new Map<keyof Events, Set<Listener>>();
  readonly #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void = () => undefined) {
    this.#onListenerError = onListenerError;
  }

  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  once<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    const wrapped = ((...args: Parameters<Events[K]>) => {
      off();
      listener(...args);
    }) as Events[K];
    const off = this.on(event, wrapped);
    return off;
  }

  off<K extends keyof Events>(event: K, listener: Events[K]): void {
    this.#listeners.get(event)?.delete(listener);
  }

  emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }
}

/** Structured logger: pino, console or anything with these four methods. */
export interface TetherLogger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

export const silentLogger: TetherLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Resolves `true` after `ms`, or `false` as soon as `signal` aborts (it never rejects). */
export function delay(ms: number, signal?: AbortSignal): Promise<boolean> {
  return sleep(ms, true, { signal }).catch(() => false);
}

/** The base URL without a trailing slash; throws a TypeError for anything but http(s). */
export function normaliseBaseUrl(url: string): string {
  return tetherEndpoints(url).base;
}

/** http://host:port[/prefix] → ws://host:port[/prefix]/trpc (https → wss). */
export function webSocketUrl(baseUrl: string): string {
  return tetherEndpoints(baseUrl).ws;
}
