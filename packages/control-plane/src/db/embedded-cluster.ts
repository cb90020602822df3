/**
 * The cluster on disk and its postmaster: Tether's file beside the data directory
 * (`<dataDir>.json`, mode 0600: the port and the passwords), initdb, and starting PostgreSQL on
 * 127.0.0.1 with no Unix socket, in its own process group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, chown, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { EmbeddedPostgresError } from './embedded-errors.js';
import { embeddedBinary, makeExecutable, SUPERUSER, type Account } from './embedded-root.js';

export const StateSchema = z.object({
  port: z.number().int().min(1).max(65535).optional(),
  superuserPassword: z.string().min(16).optional(),
  rolePasswords: z.record(z.string(), z.string().min(16)).default({}),
});
export type State = z.infer<typeof StateSchema>;

export const newPassword = (): string => randomBytes(24).toString('base64url');

// --- Tether's files beside the cluster ------------------------------------------------------

export async function readState(file: string): Promise<State> {
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
export async function writeState(file: string, state: State): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}

export async function isInitialised(dataDir: string): Promise<boolean> {
  try {
    await access(join(dataDir, 'PG_VERSION'), constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

// --- initdb and the postmaster --------------------------------------------------------------

const CHILD_ENV = { LC_ALL: 'C', LC_MESSAGES: 'C' };

export async function initdb(
  dataDir: string,
  password: string,
  account: Account | null,
): Promise<void> {
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

export interface Launched {
  child: ChildProcess;
  /** The last lines PostgreSQL wrote, for error messages. */
  tail(): string;
}

export class BindFailure extends Error {}

/** Starts the postmaster and resolves once it accepts connections. */
export async function launch(
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
      // Its own process group: the owner decides when it stops (see embedded.ts's header).
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
