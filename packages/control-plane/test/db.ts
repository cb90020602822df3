/**
 * Per-file database: `await useTestDatabase()` in a test file clones the migrated template
 * into a fresh database and returns a `Db` on it, dropped after the file's tests.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, inject } from 'vitest';
import { createDb, type Db, type Sql } from '../src/db/pool.js';
import { adminQuery, databaseUrl } from './postgres.js';

export interface TestDatabase {
  db: Db;
  url: string;
  name: string;
}

export async function createTestDatabase(): Promise<TestDatabase & { drop(): Promise<void> }> {
  const adminUrl = inject('pgAdminUrl');
  const template = inject('pgTemplateDatabase');
  const runId = template.replace('tether_template_', '');
  const name = `tether_t_${runId}_${randomBytes(5).toString('hex')}`;
  // Concurrent clones of one template can collide ("source database is being accessed"); retry.
  for (let attempt = 0; ; attempt++) {
    try {
      await adminQuery(adminUrl, `CREATE DATABASE ${name} TEMPLATE ${template}`);
      break;
    } catch (error) {
      if (attempt >= 20 || !/being accessed by other users/.test(String(error))) throw error;
      await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
    }
  }
  const url = databaseUrl(adminUrl, name);
  const db = createDb({ connectionString: url, max: 8, applicationName: 'tether-test' });
  return {
    db,
    url,
    name,
    async drop() {
      await db.close();
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Registers before/after hooks; the returned object is filled in before the first test. */
export function useTestDatabase(): TestDatabase {
  const handle = {} as TestDatabase;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const created = await createTestDatabase();
    Object.assign(handle, { db: created.db, url: created.url, name: created.name });
    drop = () => created.drop();
  });
  afterAll(async () => {
    await drop?.();
  });
  return handle;
}

/**
 * How many rows of `table` `work` updated inside the transaction `sql`, and how many of those
 * were HOT. pg_stat_xact_user_tables also shows the connection's earlier transactions until its
 * backend flushes them (at most once a second), so this counts the difference.
 */
export async function updatesIn(
  sql: Sql,
  table: string,
  work: () => Promise<unknown>,
): Promise<{ updated: number; hot: number }> {
  const read = async () => {
    const { rows } = await sql.query<{ updated: number; hot: number }>(
      `SELECT n_tup_upd::int AS updated, n_tup_hot_upd::int AS hot
         FROM pg_stat_xact_user_tables WHERE relid = $1::regclass`,
      [`public.${table}`],
    );
    return rows[0]!;
  };
  const before = await read();
  await work();
  const after = await read();
  return { updated: after.updated - before.updated, hot: after.hot - before.hot };
}
