/**
 * Runs the SQL files in ../migrations with postgres-migrations, which serialises concurrent
 * runners with a PostgreSQL advisory lock and records applied files (with hashes) so an edited
 * migration is refused rather than silently skipped.
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from 'postgres-migrations';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface MigrationResult {
  applied: string[];
}

export async function runMigrations(connectionString: string): Promise<MigrationResult> {
  const client = new pg.Client({ connectionString, application_name: 'tether-migrate' });
  await client.connect();
  try {
    const applied = await migrate({ client }, MIGRATIONS_DIR, { logger: () => undefined });
    return { applied: applied.map((m) => m.fileName) };
  } finally {
    await client.end();
  }
}
