/**
 * The real `tether-server serve` in a child process, for restart tests (SIGTERM, kill -9).
 * The port is read from the server's own "tether listening" log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

export interface LaunchedServer {
  child: ChildProcess;
  /** stdout and stderr, interleaved. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
}

export interface ServerProcess extends LaunchedServer {
  url: string;
}

/** Environment for the child: ours, then `env`; an `undefined` value removes the variable. */
function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = {
    ...process.env,
    TETHER_PORT: '0',
    TETHER_HOST: '127.0.0.1',
    TETHER_LOG_LEVEL: 'info',
  };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete merged[name];
    else merged[name] = value;
  }
  return merged;
}

/** How the child runs `tether-server`: from source through tsx (default), or another entry. */
export const SOURCE_ENTRY = ['--import', 'tsx', 'src/server/cli.ts'];

/** Starts the server process without waiting for it (for servers expected to refuse to start). */
export function launchServer(
  env: Record<string, string | undefined>,
  entry: string[] = SOURCE_ENTRY,
): LaunchedServer {
  // A data directory of its own unless the test names one: a server without an admin writes
  // its first-admin token file there, never into the package.
  const ownDataDir =
    'TETHER_DATA_DIR' in env ? null : mkdtempSync(join(tmpdir(), 'tether-process-server-'));
  const child = spawn(process.execPath, [...entry, 'serve'], {
    cwd: PACKAGE_DIR,
    env: childEnv(ownDataDir === null ? env : { ...env, TETHER_DATA_DIR: ownDataDir }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      if (ownDataDir !== null) rmSync(ownDataDir, { recursive: true, force: true });
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return { child, output: () => output, stdout: () => stdout, stderr: () => stderr, exited };
}

export async function spawnServer(
  env: Record<string, string | undefined>,
  entry: string[] = SOURCE_ENTRY,
): Promise<ServerProcess> {
  const launched = launchServer(env, entry);
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      const match = /"url":"(http:\/\/[^"]+)","trpc"/.exec(launched.output());
      if (match) {
        launched.child.stdout?.off('data', onData);
        resolve(match[1]!);
      }
    };
    launched.child.stdout?.on('data', onData);
    void launched.exited.then((code) =>
      reject(new Error(`server exited (${code}) before listening:\n${launched.output()}`)),
    );
  });
  return { ...launched, url };
}
