/**
 * One dedicated LISTEN connection per replica, shared by every feature that needs cross-replica
 * signals (the fleet event feed, credential revocations). It reconnects with backoff after a
 * failure and re-LISTENs; `onReconnect` lets consumers re-read what they may have missed, since
 * PostgreSQL does not queue notifications for a disconnected listener.
 */
import pg from 'pg';

export type NotificationHandler = (payload: string) => void;

export interface PgListenerOptions {
  connectionString: string;
  onError?: (error: unknown) => void;
  /** Called after the connection is (re)established and every channel is listened again. */
  onReconnect?: () => void;
  maxBackoffMs?: number;
}

export class PgListener {
  readonly #options: PgListenerOptions;
  readonly #handlers = new Map<string, Set<NotificationHandler>>();
  #client: pg.Client | null = null;
  #closed = false;
  #connecting: Promise<void> | null = null;
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | null = null;

  constructor(options: PgListenerOptions) {
    this.#options = options;
  }

  /** Connects and listens on the registered channels. Resolves once listening. */
  start(): Promise<void> {
    this.#connecting ??= this.#connect();
    return this.#connecting;
  }

  on(channel: string, handler: NotificationHandler): () => void {
    assertChannel(channel);
    let set = this.#handlers.get(channel);
    if (!set) {
      set = new Set();
      this.#handlers.set(channel, set);
      if (this.#client)
        void this.#client
          .query(`LISTEN ${channel}`)
          .catch((e: unknown) => this.#options.onError?.(e));
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  get connected(): boolean {
    return this.#client !== null;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#options.connectionString,
      application_name: 'tether-listen',
      // A dead peer must surface as an error (and a reconnect), not as silence.
      keepAlive: true,
    });
    client.on('notification', (message) => {
      const handlers = this.#handlers.get(message.channel);
      if (!handlers) return;
      for (const handler of handlers) {
        try {
          handler(message.payload ?? '');
        } catch (error) {
          this.#options.onError?.(error);
        }
      }
    });
    client.on('error', (error) => {
      this.#options.onError?.(error);
      this.#lost(client);
    });
    client.on('end', () => this.#lost(client));
    try {
      await client.connect();
      for (const channel of this.#handlers.keys()) await client.query(`LISTEN ${channel}`);
    } catch (error) {
      this.#options.onError?.(error);
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.#scheduleRetry();
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#attempt = 0;
    this.#options.onReconnect?.();
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = null;
    client.removeAllListeners('end');
    void client.end().catch(() => undefined);
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer) return;
    const cap = this.#options.maxBackoffMs ?? 5_000;
    const delay = Math.random() * Math.min(cap, 100 * 2 ** this.#attempt++);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#connect().catch(() => undefined);
    }, delay);
    this.#retryTimer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = null;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}

/** Publishes on a channel inside the caller's statement or transaction (delivered at commit). */
export const NOTIFY_SQL = 'SELECT pg_notify($1, $2)';

function assertChannel(channel: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`invalid channel name: ${channel}`);
}
