/**
 * The database handle: a `pg.Pool` wrapper, and the only module (with migrate/embedded) that
 * imports `pg`. Services see the narrow `Sql`/`Db` interfaces below, never pg itself.
 * Invariants: a transaction rolls back on any throw; its client is always released; a client
 * whose rollback failed is destroyed instead of returned to the pool; every pg error leaving
 * here has been translated to a `TetherError` (see errors.ts).
 */
import pg from 'pg';
import { TetherError } from '@tether/contracts';
import { translateDbError } from './errors.js';
import { SingleFlight } from '../lib/single-flight.js';

// int8 (bigserial ids, counts) as strings would surprise callers; they fit in a JS number for us.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/**
 * A statement PostgreSQL parses and plans once per connection and then reuses: for the hot paths
 * (heartbeats, presence writes), where planning costs more than executing. The name must be
 * unique per text; the plan is invalidated by PostgreSQL itself when the schema changes.
 */
export interface PreparedStatement {
  name: string;
  text: string;
}

export function prepared(name: string, text: string): PreparedStatement {
  return { name, text };
}

/** Anything that can run a parameterised statement: the pool or a transaction's client. */
export interface Sql {
  query<R extends object = Record<string, unknown>>(
    text: string | PreparedStatement,
    params?: unknown[],
  ): Promise<QueryResult<R>>;
  /**
   * Sends `NOTIFY channel` once what this handle wrote is committed: right away outside a
   * transaction, after COMMIT inside one, never after a rollback. The notification is sent from
   * the pool in a transaction of its own, coalesced per channel (at most one in flight, and one
   * more after it for everything committed meanwhile; empty payload), so writers never NOTIFY
   * in their own transactions: PostgreSQL serialises the commits of notifying transactions
   * through one database-wide lock held across their WAL flush.
   */
  notifyAfterCommit(channel: string): void;
}

export interface Db extends Sql {
  /** Runs `fn` in a transaction (READ COMMITTED), committing on return, rolling back on throw. */
  tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  /** Runs `fn` with one dedicated connection, outside a transaction. */
  withClient<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  readonly pool: pg.Pool;
  /** Sends the notifications still pending, then closes the pool. */
  close(): Promise<void>;
}

export interface DbOptions {
  connectionString: string;
  max?: number;
  applicationName?: string;
  statementTimeoutMs?: number;
  /** A coalesced notification (`notifyAfterCommit`) could not be sent. */
  onNotifyError?: (error: unknown) => void;
}

async function run<R extends object>(
  target: pg.Pool | pg.PoolClient,
  statement: string | PreparedStatement,
  params?: unknown[],
): Promise<QueryResult<R>> {
  try {
    const result =
      typeof statement === 'string'
        ? await target.query<R>(statement, params)
        : await target.query<R>({
            name: statement.name,
            text: statement.text,
            values: params ?? [],
          });
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  } catch (error) {
    throw translateDbError(error);
  }
}

/** The coalescing behind `notifyAfterCommit`: one `SingleFlight` per channel. */
class Notifier {
  readonly #send: (channel: string) => Promise<unknown>;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #channels = new Map<string, SingleFlight>();

  constructor(send: (channel: string) => Promise<unknown>, onError?: (error: unknown) => void) {
    this.#send = send;
    this.#onError = onError;
  }

  request(channel: string): void {
    let flight = this.#channels.get(channel);
    if (!flight) {
      flight = new SingleFlight(async () => {
        await this.#send(channel);
      }, this.#onError);
      this.#channels.set(channel, flight);
    }
    flight.request();
  }

  /** Resolves once nothing is in flight or pending. */
  async idle(): Promise<void> {
    await Promise.all([...this.#channels.values()].map((flight) => flight.idle()));
  }
}

function wrapClient(client: pg.PoolClient, notify: (channel: string) => void): Sql {
  return {
    query: (text, params) => run(client, text, params),
    notifyAfterCommit: notify,
  };
}

/**
 * COMMIT in a transaction that already failed (a statement errored and `fn` swallowed the error)
 * does not raise: PostgreSQL rolls back and answers with the ROLLBACK command tag. Treat that as
 * the failure it is rather than reporting a commit that never happened.
 */
async function commit(client: pg.PoolClient): Promise<void> {
  let command: string;
  try {
    command = (await client.query('COMMIT')).command;
  } catch (error) {
    throw translateDbError(error);
  }
  if (command !== 'COMMIT') {
    throw new TetherError(
      'system.internal',
      'The transaction was rolled back because a statement in it failed.',
    );
  }
}

export function createDb(options: DbOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'tether',
    ...(options.statementTimeoutMs === undefined
      ? {}
      : { statement_timeout: options.statementTimeoutMs }),
  });
  // An idle client that errors (e.g. the server restarted) must not crash the process;
  // the pool drops it and the next checkout gets a fresh connection.
  pool.on('error', () => undefined);
  // pg-pool only listens for errors on idle clients. A checked-out client whose connection dies
  // (backend terminated, network cut) emits 'error' after failing its pending queries; without a
  // listener that is an uncaught exception. The failed queries already carry the error, and
  // tx/withClient then destroy the client, so the event itself needs no handling.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });

  const notifier = new Notifier(
    (channel) => run(pool, 'SELECT pg_notify($1, $2)', [channel, '']),
    options.onNotifyError,
  );
  const notifyNow = (channel: string): void => notifier.request(channel);

  async function checkout(): Promise<pg.PoolClient> {
    try {
      return await pool.connect();
    } catch (error) {
      throw translateDbError(error);
    }
  }

  return {
    pool,
    query: (text, params) => run(pool, text, params),
    notifyAfterCommit: notifyNow,
    async tx(fn) {
      const client = await checkout();
      let broken = false;
      const afterCommit = new Set<string>();
      try {
        await run(client, 'BEGIN');
        const result = await fn(wrapClient(client, (channel) => afterCommit.add(channel)));
        await commit(client);
        for (const channel of afterCommit) notifier.request(channel);
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
        // pg errors were already translated by run(); domain errors pass through unchanged.
        throw error;
      } finally {
        // release(true) destroys the client rather than returning a broken one to the pool.
        client.release(broken);
      }
    },
    async withClient(fn) {
      const client = await checkout();
      let broken = false;
      try {
        return await fn(wrapClient(client, notifyNow));
      } catch (error) {
        // A connection-level failure leaves the client unusable: do not pool it again.
        broken = error instanceof TetherError && error.code === 'system.unavailable';
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async close() {
      await notifier.idle();
      await pool.end();
    },
  };
}

/** The pool's connections now: open, idle, and requests waiting for one (admission's signal). */
export function poolStats(db: Db): { total: number; idle: number; waiting: number } {
  return { total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount };
}
