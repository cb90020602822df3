/**
 * Processes around the embedded PostgreSQL: who runs on a data directory (postmaster.pid, checked
 * against the process's command line, so a reused pid is never taken for our postmaster), stopping
 * a postmaster that is not necessarily our child, the owner lock of a data directory, the watchdog
 * that stops PostgreSQL when its owner dies, and loopback ports.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { open, readFile, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const onLinux = process.platform === 'linux';

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error
    ? String(error.code)
    : undefined;
}

/** The fields of /proc/<pid>/stat after the command name (which may contain spaces). */
async function procStat(pid: number): Promise<string[] | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Alive and not a zombie (an exited process nobody reaped yet is gone for our purposes). */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (errorCode(error) !== 'EPERM') return false;
  }
  if (!onLinux) return true;
  const stat = await procStat(pid);
  return stat !== null && stat[0] !== 'Z';
}

/** Linux: the process's start time (clock ticks after boot), which tells a reused pid apart. */
export async function startTimeOf(pid: number): Promise<string | null> {
  if (!onLinux) return null;
  return (await procStat(pid))?.[19] ?? null;
}

async function commandLine(pid: number): Promise<string[] | null> {
  if (onLinux) {
    try {
      const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      return raw.split('\0').filter((arg) => arg.length > 0);
    } catch {
      return null;
    }
  }
  return new Promise((resolve) => {
    execFile('ps', ['-p', String(pid), '-o', 'command='], (error, stdout) => {
      // Without /proc the arguments come back space-joined: good enough to find the data dir.
      resolve(error ? null : stdout.trim().split(' '));
    });
  });
}

export interface Postmaster {
  pid: number;
  /**
   * `ours`: a postgres process started on this data directory; `other`: the pid now belongs to
   * some other process (the lock file is stale); `unknown`: its command line cannot be read.
   */
  identity: 'ours' | 'other' | 'unknown';
}

/** The live process named by `<dataDir>/postmaster.pid`, if any. */
export async function postmasterOn(dataDir: string): Promise<Postmaster | null> {
  let text: string;
  try {
    text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0 || !(await isAlive(pid))) return null;
  const argv = await commandLine(pid);
  if (argv === null) return { pid, identity: 'unknown' };
  const program = basename(argv[0] ?? '');
  const ours = program.startsWith('postgres') && argv.includes(dataDir);
  return { pid, identity: ours ? 'ours' : 'other' };
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

/**
 * Stops a postmaster and resolves once it is gone: fast shutdown (SIGINT: sessions are ended,
 * a checkpoint is written), then immediate shutdown (SIGQUIT: crash recovery at the next start)
 * if that takes too long.
 */
export async function stopPostmaster(pid: number): Promise<void> {
  signal(pid, 'SIGINT');
  if (await waitGone(pid, 30_000)) return;
  signal(pid, 'SIGQUIT');
  if (await waitGone(pid, 15_000)) return;
  throw new Error(`PostgreSQL (pid ${pid}) did not stop within 45 s`);
}

/**
 * Stops a postmaster still running on `dataDir` (its owner is gone: the caller holds the owner
 * lock). A postmaster.pid naming a live process that is not our postgres is stale and removed:
 * PostgreSQL itself would refuse to start while that pid is alive.
 */
export async function clearLeftover(
  dataDir: string,
  notice: (message: string, detail: Record<string, unknown>) => void,
): Promise<void> {
  const running = await postmasterOn(dataDir);
  if (running?.identity === 'ours') {
    notice('stopping the PostgreSQL left running on this data directory by a Tether that is gone', {
      pid: running.pid,
      dataDir,
    });
    await stopPostmaster(running.pid);
  } else if (running?.identity === 'other') {
    notice('removing a stale postmaster.pid (its pid now belongs to another program)', {
      pid: running.pid,
      dataDir,
    });
    await rm(join(dataDir, 'postmaster.pid'), { force: true });
  }
}

// --- the owner lock -------------------------------------------------------------------------

export class DataDirInUseError extends Error {
  override readonly name = 'DataDirInUseError';
  constructor(
    readonly lockFile: string,
    readonly pid: number,
  ) {
    super(`in use by process ${pid}`);
  }
}

interface LockHolder {
  pid: number;
  startTime: string | null;
}

async function readHolder(lockFile: string): Promise<LockHolder | null> {
  try {
    const parsed = JSON.parse(await readFile(lockFile, 'utf8')) as Partial<LockHolder>;
    if (typeof parsed.pid !== 'number') return null;
    return { pid: parsed.pid, startTime: parsed.startTime ?? null };
  } catch {
    return null;
  }
}

async function holderAlive(holder: LockHolder): Promise<boolean> {
  if (!(await isAlive(holder.pid))) return false;
  if (holder.startTime === null) return true;
  return (await startTimeOf(holder.pid)) === holder.startTime;
}

export interface OwnerLock {
  release(): Promise<void>;
}

/**
 * Takes `lockFile` for this process (created exclusively, mode 0600). A lock left by a process
 * that is gone (or whose pid was reused: the start time differs) is taken over; one held by a
 * live process fails with DataDirInUseError.
 */
export async function acquireOwnerLock(lockFile: string): Promise<OwnerLock> {
  const me: LockHolder = { pid: process.pid, startTime: await startTimeOf(process.pid) };
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lockFile, 'wx', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify(me)}\n`);
      } finally {
        await handle.close();
      }
      return {
        release: async () => {
          const holder = await readHolder(lockFile);
          if (holder?.pid === me.pid) await rm(lockFile, { force: true });
        },
      };
    } catch (error) {
      if (errorCode(error) !== 'EEXIST' || attempt > 0) throw error;
    }
    const holder = await readHolder(lockFile);
    if (holder && (await holderAlive(holder))) throw new DataDirInUseError(lockFile, holder.pid);
    await rm(lockFile, { force: true });
  }
}

// --- the watchdog ---------------------------------------------------------------------------

/** argv[3] of the watchdog shell, so that it can be recognised in a process list. */
export const WATCHDOG_NAME = 'tether-pg-watchdog';

/*
 * Blocks reading its stdin, a pipe whose other end only the owner holds (Node opens pipes
 * close-on-exec, so PostgreSQL does not inherit it). When the owner exits, however it exits,
 * the kernel closes that end and `read` returns: if a postgres of this data directory still
 * runs, it gets a fast shutdown. Signals are ignored so that a Ctrl-C to the terminal's process
 * group leaves the stopping to the owner.
 */
const WATCHDOG_SCRIPT = `
trap '' HUP INT TERM QUIT
while read -r _; do :; done
pid=
read -r pid < "$1/postmaster.pid" 2>/dev/null || exit 0
case "$pid" in ''|*[!0-9]*) exit 0 ;; esac
nl='
'
if [ -r "/proc/$pid/cmdline" ]; then
  args="$nl$(tr '\\000' '\\n' < "/proc/$pid/cmdline")$nl"
  case "$args" in *"$nl$1$nl"*) kill -INT "$pid" 2>/dev/null ;; esac
else
  args=" $(ps -p "$pid" -o command= 2>/dev/null) "
  case "$args" in *" $1 "*) kill -INT "$pid" 2>/dev/null ;; esac
fi
`;

export interface Watchdog {
  /** Lets the watchdog go: it finds nothing to stop once PostgreSQL was stopped. */
  release(): void;
}

/** Where there is a POSIX shell: a watchdog stopping PostgreSQL on `dataDir` when we die. */
export function startWatchdog(dataDir: string): Watchdog | null {
  if (process.platform === 'win32') return null;
  const child: ChildProcess = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, WATCHDOG_NAME, dataDir], {
    cwd: '/',
    // Its own process group: a signal to ours (a terminal's Ctrl-C, `kill -9 -<pgid>`) spares it.
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => undefined);
  const stdin = child.stdin as Socket;
  stdin.on('error', () => undefined);
  // Neither the watchdog nor its pipe keeps our event loop alive.
  child.unref();
  stdin.unref();
  return { release: () => stdin.destroy() };
}

// --- ports ----------------------------------------------------------------------------------

/**
 * A listener that only holds a port: it drops whatever connects, so closing it never waits for
 * a stranger's connection (a client retrying an old address can land on a probed port).
 */
const portHolder = () => createServer((socket) => socket.destroy());

/** Whether 127.0.0.1:`port` can be bound right now. */
export function loopbackPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = portHolder();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** A port the kernel considers free on 127.0.0.1. */
export function anyFreeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = portHolder();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
