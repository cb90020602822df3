/**
 * Logging in to the embedded PostgreSQL: connection strings, the superuser's password (a cluster
 * of an older Tether still on the fixed one gets the stored random one), handing objects an older
 * version created as the superuser over to the server's role, and the connection string of a
 * cluster another process (the running server) runs.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import pg from 'pg';
import { StateSchema, type State } from './embedded-cluster.js';
import { EmbeddedPostgresError } from './embedded-errors.js';
import { SUPERUSER } from './embedded-root.js';

/** What Tether versions before random passwords gave the superuser. */
const LEGACY_PASSWORD = 'postgres';

// --- credentials ----------------------------------------------------------------------------

export function urlOf(user: string, password: string, port: number, database: string): string {
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

export async function withClient<T>(
  url: string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'tether-embedded' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const isAuthFailure = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '28P01';

/**
 * Logs in as the superuser with the stored password; a cluster still on the fixed password of
 * older versions gets the stored (random) one instead. Returns whether it was rotated.
 */
export async function ensureSuperuserPassword(
  port: number,
  password: string,
  stateFile: string,
): Promise<boolean> {
  try {
    await withClient(urlOf(SUPERUSER, password, port, 'postgres'), () => Promise.resolve());
    return false;
  } catch (error) {
    if (!isAuthFailure(error)) throw error;
  }
  try {
    await withClient(urlOf(SUPERUSER, LEGACY_PASSWORD, port, 'postgres'), (client) =>
      client.query(`ALTER ROLE ${SUPERUSER} WITH PASSWORD ${client.escapeLiteral(password)}`),
    );
    return true;
  } catch (error) {
    if (!isAuthFailure(error)) throw error;
    throw new EmbeddedPostgresError(
      `Embedded PostgreSQL: the superuser password in ${stateFile} does not open the cluster; restore that file from where it was copied with the cluster.`,
    );
  }
}

/** Objects in the database's own schemas that `from` owns, handed to `to`. */
export const HAND_OVER_SQL = `
DO $$
DECLARE
  r record;
  from_role oid := (SELECT oid FROM pg_roles WHERE rolname = current_setting('tether.from_role'));
  to_role text := current_setting('tether.to_role');
BEGIN
  -- Tables first: a table's owned sequences and indexes follow it.
  FOR r IN
    SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relowner = from_role AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
        WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.name, to_role);
  END LOOP;
  FOR r IN
    SELECT c.oid::regclass AS name FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relowner = from_role AND c.relkind = 'S'
      AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', r.name, to_role);
  END LOOP;
  FOR r IN
    SELECT p.oid::regprocedure AS name FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.proowner = from_role
      AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.name, to_role);
  END LOOP;
  FOR r IN
    SELECT t.oid::regtype AS name FROM pg_type t
    JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typowner = from_role AND t.typtype IN ('e', 'd', 'c') AND t.typelem = 0
      AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
      AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO %I', r.name, to_role);
  END LOOP;
  FOR r IN
    SELECT n.nspname FROM pg_namespace n
    WHERE n.nspowner = from_role AND n.nspname NOT LIKE 'pg\\_%'
      AND n.nspname <> 'information_schema'
  LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, to_role);
  END LOOP;
END
$$`;

// --- another process's cluster --------------------------------------------------------------

/**
 * The connection string of `role` on the embedded PostgreSQL that another process (the running
 * server) runs on `dataDir`: the port and the role's password are in `<dataDir>.json`, and a
 * login is tried before answering. Throws EmbeddedPostgresError saying what is missing.
 */
export async function runningClusterUrl(
  dataDir: string,
  database: string,
  role: string,
): Promise<string> {
  const stateFile = `${resolve(dataDir)}.json`;
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new EmbeddedPostgresError(
      code === 'EACCES'
        ? `cannot read ${stateFile} (run this command as the user who runs the server)`
        : `cannot read ${stateFile}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  let state: State;
  try {
    state = StateSchema.parse(JSON.parse(text));
  } catch {
    throw new EmbeddedPostgresError(`${stateFile} is not valid JSON of the expected shape`);
  }
  const password = state.rolePasswords[role];
  if (state.port === undefined || password === undefined) {
    throw new EmbeddedPostgresError(
      `${stateFile} records no port or no password for the role "${role}" yet (the server may still be starting; try again)`,
    );
  }
  const url = urlOf(role, password, state.port, database);
  try {
    await withClient(url, () => Promise.resolve());
  } catch (error) {
    throw new EmbeddedPostgresError(
      `could not log in to it at 127.0.0.1:${state.port}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return url;
}
