/**
 * A real Tether server for transport-visible tests: in-process, on an ephemeral port, on this
 * test file's own database. `await using server = await startTestServer()` stops it at scope end.
 */
import { Writable } from 'node:stream';
import { inject } from 'vitest';
import { createParticipantWithToken } from '../src/auth/participant-tokens.js';
import { loadConfig, type Config } from '../src/server/config.js';
import { createLogger } from '../src/server/logger.js';
import { startTether, type RunningTether } from '../src/server/main.js';
import { createTestDatabase } from './db.js';

export interface TestServer extends RunningTether {
  config: Config;
  /** Everything the server logged (JSON lines), for "no secrets in logs" checks. */
  logs(): string;
  /** An admin participant token created for the test. */
  adminToken: string;
  adminParticipantId: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Presence thresholds short enough to watch a node age within a test: degraded after
 * `degradedAfterMs` without a beat, offline after twice that, a sweep every 100 ms.
 */
export function fastPresenceEnv(degradedAfterMs: number): Record<string, string> {
  return {
    TETHER_DEGRADED_AFTER_MS: String(degradedAfterMs),
    TETHER_OFFLINE_AFTER_MS: String(2 * degradedAfterMs),
    TETHER_SWEEP_INTERVAL_MS: '100',
  };
}

/** The usual fast presence: degraded after 300 ms, offline after 600 ms. */
export const FAST_PRESENCE_ENV = fastPresenceEnv(300);

export interface TestServerOptions {
  env?: Record<string, string>;
  /** Reuse an existing database URL (e.g. for restart tests) instead of a fresh clone. */
  databaseUrl?: string;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  let dropDatabase: (() => Promise<void>) | undefined;
  let databaseUrl = options.databaseUrl;
  if (!databaseUrl) {
    const created = await createTestDatabase();
    await created.db.close();
    databaseUrl = created.url;
    dropDatabase = async () => {
      const { adminQuery } = await import('./postgres.js');
      await adminQuery(
        inject('pgAdminUrl'),
        `DROP DATABASE IF EXISTS ${created.name} WITH (FORCE)`,
      );
    };
  }
  const config = loadConfig({
    TETHER_PORT: '0',
    TETHER_HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    TETHER_LOG_LEVEL: 'debug',
    TETHER_DB_POOL_MAX: '8',
    TETHER_SHUTDOWN_TIMEOUT_MS: '3000',
    // Events must reach subscribers through the notification sent after each writer's commit;
    // a writer that forgets to announce them would otherwise hide behind the safety poll.
    TETHER_FEED_POLL_MS: '600000',
    ...options.env,
  });
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  // The harness makes its own admin below; no first-admin token file from in-process servers.
  const running = await startTether(config, {
    logger: createLogger('debug', sink),
    firstAdmin: false,
  });
  const admin = await createParticipantWithToken(running.db, { name: 'test admin', role: 'admin' });
  const stop = async (): Promise<void> => {
    await running.stop();
    await dropDatabase?.();
  };
  return {
    ...running,
    config,
    logs: () => chunks.join(''),
    adminToken: admin.token,
    adminParticipantId: admin.participantId,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
