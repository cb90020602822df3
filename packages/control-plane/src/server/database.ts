/** Which PostgreSQL the server uses: DATABASE_URL, else an embedded one under the data dir. */
import { join } from 'node:path';
import {
  EmbeddedPostgresPortInUseError,
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
