/** Which PostgreSQL the server uses: DATABASE_URL, else an embedded one under the data dir. */
import { join } from 'node:path';
import {
  EmbeddedPostgresError,
  EmbeddedPostgresInUseError,
  EmbeddedPostgresPortInUseError,
  runningClusterUrl,
  startEmbeddedPostgres,
  type RunningEmbeddedPostgres,
} from '../db/embedded.js';
import { ConfigError, type Config } from './config.js';

export interface OpenedDatabase {
  url: string;
  embedded: RunningEmbeddedPostgres | null;
  close(): Promise<void>;
}

/** What happens to the embedded PostgreSQL, for the caller to log. */
export interface DatabaseEvents {
  starting?: (detail: { dataDir: string }) => void;
  ready?: (detail: { dataDir: string; port: number }) => void;
  notice?: (message: string, detail: Record<string, unknown>) => void;
}

/** The server's database and the role it logs in as (it owns the database, no superuser). */
const DATABASE_NAME = 'tether';
const DATABASE_ROLE = 'tether';

export async function openDatabase(
  config: Config,
  events: DatabaseEvents = {},
): Promise<OpenedDatabase> {
  if (config.databaseUrl)
    return { url: config.databaseUrl, embedded: null, close: () => Promise.resolve() };
  const dataDir = join(config.dataDir, 'pg');
  events.starting?.({ dataDir });
  let embedded: RunningEmbeddedPostgres;
  try {
    embedded = await startEmbeddedPostgres({
      dataDir,
      port: config.embeddedPgPort,
      persistent: true,
      ...(events.notice ? { onNotice: events.notice } : {}),
    });
  } catch (error) {
    if (error instanceof EmbeddedPostgresPortInUseError) {
      const message = `TETHER_EMBEDDED_PG_PORT=${error.port}, but 127.0.0.1:${error.port} is already in use by another program: choose a free port, or unset TETHER_EMBEDDED_PG_PORT to let Tether pick one.`;
      throw new ConfigError(message, [{ variable: 'TETHER_EMBEDDED_PG_PORT', message }]);
    }
    throw error;
  }
  let url: string;
  try {
    url = await embedded.ensureOwnedDatabase(DATABASE_NAME, DATABASE_ROLE);
  } catch (error) {
    await embedded.stop();
    throw error;
  }
  events.ready?.({ dataDir, port: embedded.port });
  return { url, embedded, close: () => embedded.stop() };
}

/**
 * For one-shot commands (`tether-server token create`, `migrate`, `pairing …`): like
 * openDatabase, but when a running server owns the embedded PostgreSQL, its database is used
 * through the port and credentials the server recorded in the data directory (`pg.json`). When
 * that fails too, the error says what to do.
 */
export async function openDatabaseForCommand(
  config: Config,
  events: DatabaseEvents & { attached?: (detail: { pid: number; dataDir: string }) => void } = {},
): Promise<OpenedDatabase> {
  try {
    return await openDatabase(config, events);
  } catch (error) {
    if (!(error instanceof EmbeddedPostgresInUseError)) throw error;
    let url: string;
    try {
      url = await runningClusterUrl(error.dataDir, DATABASE_NAME, DATABASE_ROLE);
    } catch (reason) {
      throw new EmbeddedPostgresError(
        [
          `The Tether server (process ${error.pid}) runs the embedded PostgreSQL in ${error.dataDir}, and this command could not use its database: ${reason instanceof Error ? reason.message : String(reason)}.`,
          'Either stop the server (Ctrl-C) and run the command again, or run it with DATABASE_URL set to the database the server uses.',
          `(If process ${error.pid} is not a Tether server, remove ${error.lockFile}.)`,
        ].join('\n'),
      );
    }
    events.attached?.({ pid: error.pid, dataDir: error.dataDir });
    return { url, embedded: null, close: () => Promise.resolve() };
  }
}
