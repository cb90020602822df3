#!/usr/bin/env node
/**
 * tether-server: serve | migrate | token create [--admin] --name NAME | token revoke <tokenId|token>
 * Exit codes: 0 ok, 1 runtime failure, 2 usage error.
 */
import { parseArgs } from 'node:util';
import { PARTICIPANT_TOKEN_PREFIX } from '@tether/contracts';
import { createParticipantWithToken, revokeTokenTree } from '../auth/service.js';
import { hashToken } from '../auth/tokens.js';
import { EmbeddedPostgresError } from '../db/embedded.js';
import { runMigrations } from '../db/migrate.js';
import { createDb } from '../db/pool.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase } from './database.js';
import { createLogger } from './logger.js';
import { startTether } from './main.js';
import { logStartupFailure } from './startup.js';

const USAGE = `Usage:
  tether-server serve                              run the server (default)
  tether-server migrate                            apply database migrations and exit
  tether-server token create --name NAME [--admin] create a participant and print its token
  tether-server token revoke <tokenId|token>       revoke a participant token

Configuration comes from the environment (see docs/operations.md): TETHER_PORT,
TETHER_DATA_DIR, DATABASE_URL, TETHER_BOOTSTRAP_TOKEN, ...`;

class UsageError extends Error {}

/** Runs `fn` with a database: DATABASE_URL, or the embedded one under the data dir. */
async function withDatabase<T>(config: Config, fn: (url: string) => Promise<T>): Promise<T> {
  const opened = await openDatabase(config, {
    notice: (message, detail) => console.error(`${message} ${JSON.stringify(detail)}`),
  });
  try {
    return await fn(opened.url);
  } finally {
    await opened.close();
  }
}

/**
 * A server that cannot start says so in one JSON line (what failed, the variable to check, the
 * cause without secrets: startup.ts) and exits 1 — never a raw stack trace.
 */
async function serve(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    logStartupFailure(createLogger('info'), error, undefined);
    process.exit(1);
  }
  const log = createLogger(config.logLevel);
  let running: Awaited<ReturnType<typeof startTether>>;
  try {
    running = await startTether(config, { logger: log });
  } catch (error) {
    logStartupFailure(log, error, config);
    process.exit(1);
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    // pnpm and tsx relay the terminal's signal, so one Ctrl-C can arrive two or three times:
    // repeats are ignored; the hard-stop timer bounds the shutdown anyway.
    signals++;
    if (signals > 1) return;
    log.info({ signal }, 'signal received');
    const hardStop = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 1_500);
    hardStop.unref();
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);
}

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      admin: { type: 'boolean', default: false },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const [command = 'serve', sub, arg] = positionals;
  if (command === 'serve') return serve();
  const config = loadConfig();

  if (command === 'migrate') {
    const applied = await withDatabase(config, (url) => runMigrations(url));
    console.log(
      applied.applied.length ? `applied: ${applied.applied.join(', ')}` : 'database is up to date',
    );
    return;
  }
  if (command === 'token' && sub === 'create') {
    if (!values.name) throw new UsageError('token create needs --name NAME');
    const name = values.name;
    const created = await withDatabase(config, async (url) => {
      await runMigrations(url);
      const db = createDb({ connectionString: url, max: 1 });
      try {
        return await createParticipantWithToken(db, {
          name,
          role: values.admin ? 'admin' : 'member',
        });
      } finally {
        await db.close();
      }
    });
    console.log(`participant ${created.participantId} (${values.admin ? 'admin' : 'member'})`);
    console.log(`token id    ${created.tokenId}`);
    console.log(`token       ${created.token}`);
    console.log('The token is shown once. Use it as: Authorization: Bearer <token>');
    return;
  }
  if (command === 'token' && sub === 'revoke') {
    if (!arg) throw new UsageError('token revoke needs a token id or a token');
    const revoked = await withDatabase(config, async (url) => {
      const db = createDb({ connectionString: url, max: 1 });
      try {
        const byToken = arg.startsWith(PARTICIPANT_TOKEN_PREFIX);
        // The same cascade as token.revoke: the tokens it created go with it. Running servers
        // end live uses of them at their next revalidation (within the auth cache TTL).
        return await db.tx(async (sql) => {
          const { rows } = await sql.query<{ id: string }>(
            `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now())
              WHERE ${byToken ? 'token_hash' : 'id::text'} = $1 RETURNING id`,
            [byToken ? hashToken(arg) : arg],
          );
          if (!rows[0]) return 0;
          return 1 + (await revokeTokenTree(sql, rows[0].id)).length;
        });
      } finally {
        await db.close();
      }
    });
    if (revoked === 0) throw new Error('no such token');
    console.log(
      revoked === 1 ? 'token revoked' : `token revoked, with ${revoked - 1} created from it`,
    );
    return;
  }
  throw new UsageError(`unknown command: ${[command, sub].filter(Boolean).join(' ')}`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(`${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (error instanceof ConfigError || error instanceof EmbeddedPostgresError) {
    console.error(error.message);
    process.exit(1);
  }
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
