/**
 * The server side of the browser tests: the real `tether-server serve` as a child process (it
 * serves the built dashboard at `/`), on this test file's own database, at a fixed port so it
 * can be killed (SIGKILL) and started again where the page expects it. The operator the page
 * signs in as is created through the API; nodes are real SDK nodes or `tether-agent` processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createTestDatabase,
  freePort,
  spawnServer,
  type ServerProcess,
  type TestDatabase,
} from '@tether/control-plane/testing';
import type { Capabilities } from '@tether/contracts';
import {
  createHttpClient,
  createTetherNode,
  enrollWithKey,
  saveCredentials,
  type NodeCredentials,
  type TetherClient,
  type TetherNode,
} from '@tether/node-client';
import { afterAll, beforeAll } from 'vitest';

/**
 * Presence that moves within a test: beats every 250 ms, degraded after 2 s without one,
 * offline after 4 s, swept every 100 ms (the heartbeat rate limit raised to match).
 */
export const LIVE_PRESENCE_ENV = {
  TETHER_HEARTBEAT_INTERVAL_MS: '250',
  TETHER_DEGRADED_AFTER_MS: '2000',
  TETHER_OFFLINE_AFTER_MS: '4000',
  TETHER_SWEEP_INTERVAL_MS: '100',
  TETHER_RATE_HEARTBEATS_PER_MINUTE: '6000',
};

export interface DashboardServer {
  url: string;
  port: number;
  /** The database the server runs on (seeding, checks). */
  database: TestDatabase;
  /** The bootstrap admin (TETHER_BOOTSTRAP_TOKEN), used only to create the operator. */
  bootstrapToken: string;
  /** The operator the page signs in as: an admin participant created through the API. */
  operator: { participantId: string; token: string; client: TetherClient };
  process: ServerProcess;
  /** SIGKILL: no graceful shutdown, sockets torn down by the kernel. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and database. */
  restart(): Promise<void>;
}

/** A real server for this test file: started before its first test, stopped after the last. */
export function useDashboardServer(env: Record<string, string> = {}): DashboardServer {
  const handle = {} as DashboardServer;
  let drop: (() => Promise<void>) | undefined;
  let serverEnv: Record<string, string> = {};

  beforeAll(async () => {
    const created = await createTestDatabase();
    drop = () => created.drop();
    handle.database = { db: created.db, url: created.url, name: created.name };
    handle.port = await freePort();
    handle.bootstrapToken = `tpt_${randomBytes(24).toString('hex')}`;
    serverEnv = {
      DATABASE_URL: created.url,
      TETHER_PORT: String(handle.port),
      TETHER_BOOTSTRAP_TOKEN: handle.bootstrapToken,
      // spawnServer reads the port from the server's info-level "listening" line.
      TETHER_LOG_LEVEL: 'info',
      ...env,
    };
    handle.process = await spawnServer(serverEnv);
    handle.url = handle.process.url;
    const admin = createHttpClient(handle.url, { token: handle.bootstrapToken });
    const created2 = await admin.participant.create.mutate({
      name: 'browser-test operator',
      role: 'admin',
    });
    handle.operator = {
      participantId: created2.participantId,
      token: created2.token,
      client: createHttpClient(handle.url, { token: created2.token }),
    };
  });

  handle.kill = async () => {
    handle.process.child.kill('SIGKILL');
    await handle.process.exited;
  };
  handle.restart = async () => {
    handle.process = await spawnServer(serverEnv);
  };

  afterAll(async () => {
    const child = handle.process?.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await handle.process.exited;
    }
    await drop?.();
  });
  return handle;
}

export interface Seeded {
  sessionId: string;
  enrollmentKey: string;
}

/** As the operator: a session and a reusable enrollment key (so the nodes are the operator's). */
export async function seedSession(
  server: DashboardServer,
  options: { name?: string; minNodeVersion?: string } = {},
): Promise<Seeded> {
  const session = await server.operator.client.session.create.mutate({
    name: options.name ?? `browser ${randomBytes(3).toString('hex')}`,
    ...(options.minNodeVersion ? { minNodeVersion: options.minNodeVersion } : {}),
  });
  const key = await server.operator.client.enrollment.createKey.mutate({ reusable: true });
  return { sessionId: session.sessionId, enrollmentKey: key.enrollmentKey };
}

export function enrollNode(
  server: DashboardServer,
  enrollmentKey: string,
  name: string,
  extra: { location?: string; labels?: Record<string, string>; nodeType?: string } = {},
): Promise<NodeCredentials> {
  return enrollWithKey({
    url: server.url,
    enrollmentKey,
    name,
    nodeType: extra.nodeType ?? 'daemon',
    platform: 'linux',
    ...(extra.location ? { location: extra.location } : {}),
    ...(extra.labels ? { labels: extra.labels } : {}),
  });
}

/** A real SDK node in this process, beating with machine metrics; `await using` stops it. */
export function startNode(
  server: DashboardServer,
  credentials: NodeCredentials,
  options: { sessionId?: string; nodeVersion?: string; capabilities?: Capabilities },
): TetherNode & AsyncDisposable {
  const node = createTetherNode({
    ...credentials,
    url: server.url,
    autoMetrics: true,
    capabilities: options.capabilities ?? { shell: {} },
    backoff: { baseMs: 50, capMs: 500, stableAfterMs: 1_000 },
    ...(options.sessionId ? { sessionId: options.sessionId } : {}),
    ...(options.nodeVersion ? { nodeVersion: options.nodeVersion } : {}),
  });
  return Object.assign(node, { [Symbol.asyncDispose]: () => node.stop() });
}

const AGENT_BIN = fileURLToPath(
  new URL('../bin/tether-agent.mjs', import.meta.resolve('@tether/node-client')),
);

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | string>;
  /** Resolves once the output matches `pattern`; rejects if the agent exits first. */
  waitForOutput(pattern: RegExp): Promise<RegExpExecArray>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** `tether-agent <args>` as its own process (its real entry point); killed at scope end. */
export function spawnAgent(args: string[]): AgentProcess {
  const child = spawn(process.execPath, [AGENT_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const watchers = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    for (const watcher of [...watchers]) watcher();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return {
    child,
    output: () => output,
    exited,
    waitForOutput: (pattern) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(output);
          if (!match) return;
          watchers.delete(check);
          resolve(match);
        };
        watchers.add(check);
        void exited.then((code) => {
          if (watchers.delete(check)) {
            reject(
              new Error(`tether-agent exited (${code}) before printing ${pattern}:\n${output}`),
            );
          }
        });
        check();
      }),
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
      await exited;
    },
  };
}

/** A scratch directory for credentials files, removed at scope end. */
export async function scratchDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await mkdtemp(join(tmpdir(), 'tether-dashboard-test-'));
  return { path, [Symbol.asyncDispose]: () => rm(path, { recursive: true, force: true }) };
}

/** Credentials saved where `tether-agent run --credentials` reads them. */
export async function credentialsFile(dir: string, credentials: NodeCredentials): Promise<string> {
  const path = join(dir, `${credentials.nodeId}.json`);
  await saveCredentials(path, credentials);
  return path;
}
