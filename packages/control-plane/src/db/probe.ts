/**
 * One attempt to reach a PostgreSQL server: connect, `SELECT 1`, disconnect. Used at start to
 * wait for a database that is not up yet (server/startup.ts); it never keeps a connection.
 * Errors are pg's own (or a timeout), with their `code` (`ECONNREFUSED`, SQLSTATE `28P01`, ...)
 * for the caller to describe; their messages never carry the password.
 */
import pg from 'pg';

export class DatabaseProbeTimeout extends Error {
  override readonly name = 'DatabaseProbeTimeout';
  readonly code = 'ETIMEDOUT';
}

export async function probeDatabase(url: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: Math.max(1, Math.round(timeoutMs)),
    application_name: 'tether-probe',
  });
  // A connection dropped after connect() (the server restarting) must not become an uncaught error.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    if (error instanceof Error && /timeout/i.test(error.message) && !('code' in error)) {
      throw new DatabaseProbeTimeout(`no answer within ${Math.round(timeoutMs)} ms`);
    }
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}
