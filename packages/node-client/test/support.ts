/**
 * Test support: a real server (the control plane's harness: real PostgreSQL, real HTTP and
 * WebSocket), operator actions through this package's own typed HTTP client, server-side
 * connection counting, and the agent CLI as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createHttpClient,
  createTetherNode,
  enrollWithKey,
  type NodeCredentials,
  type TetherClient,
  type TetherNode,
  type TetherNodeEvents,
  type TetherNodeOptions,
} from '../src/index.js';

import { createTestDatabase, type TestDatabase } from '@tether/control-plane/testing';

export {
  eventually,
  fastPresenceEnv,
  freePort,
  startTestServer,
  type TestServer,
} from '@tether/control-plane/testing';

/** Server settings for a fast heartbeat cadence (the heartbeat rate limit raised to match). */
export const FAST_BEATS = {
  TETHER_HEARTBEAT_INTERVAL_MS: '150',
  TETHER_RATE_HEARTBEATS_PER_MINUTE: '6000',
};

/** A short backoff: a node that wrongly retried would do so many times within a test. */
export const TEST_BACKOFF = { baseMs: 20, capMs: 300, stableAfterMs: 1_000 };

export type NodeExtras = Omit<
  Partial<TetherNodeOptions>,
  'token' | 'enrollment' | 'nodeId' | 'ownerParticipantId' | 'url'
>;

/** A node with these credentials and the test backoff; `await using` stops it. */
export function testNode(
  credentials: NodeCredentials,
  options: NodeExtras = {},
): TetherNode & AsyncDisposable {
  const node = createTetherNode({ ...credentials, backoff: TEST_BACKOFF, ...options });
  return Object.assign(node, { [Symbol.asyncDispose]: () => node.stop() });
}

/** An operator's typed client (participant token over HTTP). */
export function operator(url: string, token: string): TetherClient {
  return createHttpClient(url, { token });
}

/** A node attached to `sessionId` declaring `shell`, with the test backoff. */
export function sessionNode(
  credentials: NodeCredentials,
  sessionId: string,
): TetherNode & AsyncDisposable {
  return testNode(credentials, { sessionId, capabilities: { shell: {} } });
}

export interface Seeded {
  admin: TetherClient;
  sessionId: string;
  enrollmentKey: string;
}

/** As `token` (an admin): a session it owns and a reusable enrollment key. */
export async function seed(
  url: string,
  token: string,
  options: { minNodeVersion?: string } = {},
): Promise<Seeded> {
  const admin = operator(url, token);
  const session = await admin.session.create.mutate({
    name: `node-client ${randomBytes(3).toString('hex')}`,
    ...(options.minNodeVersion ? { minNodeVersion: options.minNodeVersion } : {}),
  });
  const key = await admin.enrollment.createKey.mutate({ reusable: true });
  return { admin, sessionId: session.sessionId, enrollmentKey: key.enrollmentKey };
}

export function enrolled(
  url: string,
  enrollmentKey: string,
  nodeId?: string,
): Promise<NodeCredentials> {
  return enrollWithKey({
    url,
    enrollmentKey,
    name: 'test node',
    nodeType: 'daemon',
    ...(nodeId ? { nodeId } : {}),
  });
}

/** A database that outlives one server (restarts on the same data); dropped at scope end. */
export async function persistentDatabase(): Promise<TestDatabase & AsyncDisposable> {
  const created = await createTestDatabase();
  const { url, db, name } = created;
  return { url, db, name, [Symbol.asyncDispose]: () => created.drop() };
}

/** Counts WebSocket upgrade requests the server receives: what "hammering" would look like. */
export function countUpgrades(server: Server): { readonly count: number } {
  const counter = { count: 0 };
  server.on('upgrade', () => counter.count++);
  return counter;
}

type EventArg<K extends keyof TetherNodeEvents> = Parameters<TetherNodeEvents[K]>[0];

/** The next `event` the node emits (a promise, not a sleep). */
export function nextEvent<K extends keyof TetherNodeEvents>(
  node: TetherNode,
  event: K,
): Promise<EventArg<K>> {
  return events(node, event, 1).then((seen) => seen[0]!);
}

/** Resolves after the node has emitted `event` `count` more times. */
export function events<K extends keyof TetherNodeEvents>(
  node: TetherNode,
  event: K,
  count: number,
): Promise<EventArg<K>[]> {
  const seen: EventArg<K>[] = [];
  return new Promise((resolve) => {
    const listener = ((arg: EventArg<K>) => {
      seen.push(arg);
      if (seen.length >= count) {
        off();
        resolve(seen);
      }
    }) as TetherNodeEvents[K];
    const off = node.on(event, listener);
  });
}

export async function tempDir(): Promise<{
  path: string;
  [Symbol.asyncDispose](): Promise<void>;
}> {
  const path = await mkdtemp(join(tmpdir(), 'tether-node-client-'));
  return { path, [Symbol.asyncDispose]: () => rm(path, { recursive: true, force: true }) };
}

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

export interface AgentProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | string>;
  /** Resolves with the match once stdout matches `pattern`; rejects if the agent exits first. */
  waitForOutput(pattern: RegExp): Promise<RegExpExecArray>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** `tether-agent …` as a child process, through its real entry point (bin/tether-agent.mjs). */
export function spawnAgent(args: string[], env: Record<string, string> = {}): AgentProcess {
  const child = spawn(process.execPath, ['bin/tether-agent.mjs', ...args], {
    cwd: PACKAGE_DIR,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    for (const watcher of [...watchers]) watcher();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitForOutput: (pattern) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(stdout);
          if (!match) return;
          watchers.delete(check);
          resolve(match);
        };
        watchers.add(check);
        void exited.then((code) => {
          if (!watchers.delete(check)) return;
          reject(
            new Error(`agent exited (${code}) before printing ${pattern}:\n${stdout}\n${stderr}`),
          );
        });
        check();
      }),
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs the agent to completion. */
export async function runAgent(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const agent = spawnAgent(args, env);
  const code = await agent.exited;
  return { code, stdout: agent.stdout(), stderr: agent.stderr() };
}

/**
 * The sum of the server's /metrics samples of `name` whose labels include `labels` (0 when none):
 * what the server saw, e.g. how many `runtimenode.attach` calls it served.
 */
export async function metricTotal(
  baseUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const series = line.slice(0, line.lastIndexOf(' '));
    if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}
