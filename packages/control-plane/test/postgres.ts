/**
 * The PostgreSQL ladder for tests, first match wins:
 *   1. `TETHER_TEST_PG=container:<image>` (e.g. `container:postgres:14`): a throwaway container
 *      started with testcontainers, for contributors with a Docker engine who want to run the
 *      suite against another PostgreSQL major version; without an engine it fails in one line;
 *   2. `DATABASE_URL`: an external server we may create databases on;
 *   3. otherwise an embedded PostgreSQL started once per run in a temp directory.
 * Whichever it is, one template database is migrated once and each test file clones it.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { anyFreeLoopbackPort } from '../src/db/embedded-processes.js';
import { runMigrations } from '../src/db/migrate.js';

export interface TestPostgres {
  /** Connection string to a maintenance database (used to create/drop databases). */
  adminUrl: string;
  templateDatabase: string;
  stop(): Promise<void>;
}

/** A port the kernel considers free on 127.0.0.1 (the embedded launcher's own probe). */
export const freePort = (): Promise<number> => anyFreeLoopbackPort();

export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function adminQuery(adminUrl: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

export type TestPgRung =
  { kind: 'container'; image: string } | { kind: 'url'; url: string } | { kind: 'embedded' };

/** Which rung of the ladder the environment asks for. */
export function testPgRung(env: NodeJS.ProcessEnv): TestPgRung {
  const wanted = env.TETHER_TEST_PG?.trim();
  if (wanted) {
    const match = /^container:(\S+)$/.exec(wanted);
    if (!match) {
      throw new Error(
        `TETHER_TEST_PG=${wanted}: expected container:<image>, e.g. container:postgres:14`,
      );
    }
    return { kind: 'container', image: match[1]! };
  }
  if (env.DATABASE_URL) return { kind: 'url', url: env.DATABASE_URL };
  return { kind: 'embedded' };
}

/** A PostgreSQL container (testcontainers); loaded only when asked for. */
export async function startContainerPostgres(
  image: string,
): Promise<{ adminUrl: string; stop(): Promise<void> }> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  try {
    const container = await new PostgreSqlContainer(image).start();
    return {
      adminUrl: container.getConnectionUri(),
      stop: async () => {
        await container.stop();
      },
    };
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new Error(
      `TETHER_TEST_PG=container:${image}: no container could be started (${reason}); ` +
        'a Docker engine is needed for this rung — unset TETHER_TEST_PG to use DATABASE_URL or the embedded PostgreSQL',
    );
  }
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const runId = randomBytes(4).toString('hex');
  const templateDatabase = `tether_template_${runId}`;
  let adminUrl: string;
  let stopServer: () => Promise<void> = () => Promise.resolve();

  const rung = testPgRung(process.env);
  const external = rung.kind === 'url';
  if (rung.kind === 'container') {
    const container = await startContainerPostgres(rung.image);
    adminUrl = container.adminUrl;
    stopServer = () => container.stop();
  } else if (rung.kind === 'url') {
    adminUrl = rung.url;
  } else {
    // mkdtemp makes a 0700 directory; PostgreSQL (as the postgres user under root) must enter it.
    const root = await mkdtemp(join(tmpdir(), 'tether-test-pg-'));
    await chmod(root, 0o755);
    const embedded = await startEmbeddedPostgres({
      dataDir: join(root, 'data'),
      port: await freePort(),
      persistent: false,
    });
    adminUrl = embedded.connectionString('postgres');
    stopServer = () => embedded.stop();
  }

  await adminQuery(adminUrl, `CREATE DATABASE ${templateDatabase}`);
  await runMigrations(databaseUrl(adminUrl, templateDatabase));

  return {
    adminUrl,
    templateDatabase,
    async stop() {
      if (external) {
        // Leave an external server as we found it: drop this run's databases.
        const client = new pg.Client({ connectionString: adminUrl });
        await client.connect();
        try {
          const { rows } = await client.query<{ datname: string }>(
            `SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2`,
            [templateDatabase, `tether_t_${runId}_%`],
          );
          for (const { datname } of rows)
            await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
        } finally {
          await client.end();
        }
      }
      await stopServer();
    },
  };
}
