/** The servers under test, each a process of its own: Tether's real CLI, and the baseline. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_DIR, waitFor } from './ipc.js';
import { freeLoopbackPort } from './postgres.js';
import { CONTROL_PLANE_DIR } from './tether-internals.js';

export type Target = 'tether' | 'baseline';
export type ServerProcess = Awaited<ReturnType<typeof startServer>>;
export type ServerExit = Awaited<ReturnType<ServerProcess['stop']>>;

/** Tether's settings for the bench (docs/performance.md, "Tether's configuration in the bench"). */
export const TETHER_BENCH_ENV: Record<string, string> = {
  TETHER_RATE_HEARTBEATS_PER_MINUTE: '600',
  // Every simulated node connects from 127.0.0.1: one address, not one client.
  TETHER_WS_MAX_UNAUTHENTICATED_PER_PEER: '1000000',
  TETHER_WS_ADMIT_PER_SECOND: '0',
  TETHER_LOG_LEVEL: 'info',
};

/** How each kind is started: its node arguments, directory, settings and readiness path. */
const SPECS = {
  tether: {
    // The operator's command: the bin runs the bundle `buildTether()` wrote (decision 0022).
    args: ['bin/tether-server.mjs', 'serve'],
    cwd: fileURLToPath(CONTROL_PLANE_DIR),
    readyPath: '/readyz',
    env: (url: string, port: number) => ({
      ...TETHER_BENCH_ENV,
      DATABASE_URL: url,
      TETHER_PORT: String(port),
      TETHER_HOST: '127.0.0.1',
    }),
  },
  baseline: {
    args: ['--import', 'tsx', 'src/baseline/server.ts'],
    cwd: BENCH_DIR,
    readyPath: '/livez',
    env: (url: string, port: number) => ({ DATABASE_URL: url, BASELINE_PORT: String(port) }),
  },
};

/** `pnpm --filter @tether/control-plane build`: the server bundle the bin runs when fresh. */
export async function buildTether(): Promise<void> {
  const child = spawn(process.execPath, ['scripts/build-server.mjs'], {
    cwd: fileURLToPath(CONTROL_PLANE_DIR),
    stdio: 'inherit',
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`building the server bundle failed (exit ${code})`);
}

export interface StartOptions {
  /** Listen here instead of on a free port (a restart, on the port its clients know). */
  port?: number;
  /** Called with the process id as soon as it is spawned, before it is ready. */
  onSpawn?: (pid: number) => void;
  /** Server settings of this scenario, on top of the bench's. */
  env?: Record<string, string>;
  /** How long its readiness probe may go unanswered (default 60 s; a flooded server answers late). */
  readyWithinMs?: number;
}

/** A gauge's value in Prometheus text (`<prefix>_<suffix>`, any labels); null if absent. */
function metricValue(text: string, suffix: string): number | null {
  const match = new RegExp(`^\\w*${suffix}(?:\\{[^}]*\\})?\\s+([0-9.eE+-]+)$`, 'm').exec(text);
  return match ? Number(match[1]) : null;
}

/** GET `url`, or null when it does not answer within `timeoutMs`. */
const tryFetch = (url: string, timeoutMs: number) =>
  fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).catch(() => null);

/** Starts a fresh server process of this kind, output to `logFile`; resolves once it is ready. */
export async function startServer(
  target: Target,
  databaseUrl: string,
  logFile: string,
  options: StartOptions = {},
) {
  const spec = SPECS[target];
  const port = options.port ?? (await freeLoopbackPort());
  const out = createWriteStream(logFile);
  // BENCH_CPU_PROF=1: V8 CPU profiles of the servers, written next to the log when they exit.
  const profile = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${join(dirname(logFile), 'profiles', target)}`]
    : [];
  const child = spawn(process.execPath, [...profile, ...spec.args], {
    cwd: spec.cwd,
    env: { ...process.env, ...spec.env(databaseUrl, port), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const baseUrl = `http://127.0.0.1:${port}`;
  let exit: { code: number | null; signal: string | null } | null = null;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  const readyWithinMs = options.readyWithinMs ?? 60_000;
  const ready = async () =>
    child.exitCode !== null || !!(await tryFetch(`${baseUrl}${spec.readyPath}`, 2_000))?.ok;
  if (!(await waitFor(ready, Date.now() + readyWithinMs, 200)) || child.exitCode !== null) {
    child.kill('SIGKILL'); // leave no process behind
    const why =
      child.exitCode !== null
        ? `exited (${child.exitCode})`
        : `not ready within ${readyWithinMs / 1_000} s`;
    throw new Error(`server at ${baseUrl} ${why}; see ${logFile}`);
  }
  return {
    target,
    baseUrl,
    pid: child.pid!,
    logFile,
    /** Event-loop delay p99 and max (ms) since the previous call (the server resets on scrape). */
    async loopLag(): Promise<{ p99Ms: number; maxMs: number } | null> {
      // A server drowning in its backlog may not answer: no number rather than a stalled run.
      const res = await tryFetch(`${baseUrl}/metrics`, 3_000);
      const text = (await res?.text().catch(() => null)) ?? '';
      const p99 = metricValue(text, 'nodejs_eventloop_lag_p99_seconds');
      const max = metricValue(text, 'nodejs_eventloop_lag_max_seconds');
      return p99 === null || max === null ? null : { p99Ms: p99 * 1000, maxMs: max * 1000 };
    },
    /** How the process ended if it already has (a crash under load, e.g. out of memory). */
    exit: (): { code: number | null; signal: string | null } | null => exit,
    /** SIGTERM, then SIGKILL after 15 s; `crashed`: it had exited before (with its log's end). */
    async stop() {
      const crashed = exit !== null;
      if (!crashed) {
        child.kill('SIGTERM');
        const hard = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(hard);
      }
      await new Promise<void>((resolve) => out.end(resolve));
      const { code, signal } = exit ?? { code: null, signal: null };
      const logTail = crashed ? (await readFile(logFile, 'utf8')).slice(-1_500) : null;
      return { crashed, code, signal, logTail };
    },
  };
}
