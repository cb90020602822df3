/** Which PostgreSQL the server uses: DATABASE_URL, else an embedded one under the data dir. */
import { join } from 'node:path';
import { ensureDatabase } from '../db/create-database.js';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from '../db/embedded.js';
import type { Config } from './config.js';

export interface OpenedDatabase {
  url: string;
  embedded: RunningEmbeddedPostgres | null;
  close(): Promise<void>;
}

const DATABASE_NAME = 'tether';

export async function openDatabase(
  config: Config,
  onEmbeddedStart?: () => void,
): Promise<OpenedDatabase> {
  if (config.databaseUrl)
    return { url: config.databaseUrl, embedded: null, close: () => Promise.resolve() };
  onEmbeddedStart?.();
  const embedded = await startEmbeddedPostgres({
    dataDir: join(config.dataDir, 'pg'),
    port: config.embeddedPgPort,
    persistent: true,
  });
  try {
    await ensureDatabase(embedded.connectionString('postgres'), DATABASE_NAME);
  } catch (error) {
    await embedded.stop();
    throw error;
  }
  return { url: embedded.connectionString(DATABASE_NAME), embedded, close: () => embedded.stop() };
}
