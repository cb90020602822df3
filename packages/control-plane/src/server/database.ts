/** Which PostgreSQL the server uses: DATABASE_URL, else an embedded one under the data dir. */
import { join } from 'node:path';
import pg from 'pg';
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
    const client = new pg.Client({ connectionString: embedded.connectionString('postgres') });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [
        DATABASE_NAME,
      ]);
      if (rows.length === 0) await client.query(`CREATE DATABASE ${DATABASE_NAME}`);
    } finally {
      await client.end();
    }
  } catch (error) {
    await embedded.stop();
    throw error;
  }
  return { url: embedded.connectionString(DATABASE_NAME), embedded, close: () => embedded.stop() };
}
