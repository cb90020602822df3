#!/usr/bin/env node
/**
 * tether-server: serve | migrate | token create [--admin] --name NAME | token revoke <tokenId|token>
 *   | pairing list [--all] | pairing approve|reject <code|requestId> [--as PARTICIPANT_ID]
 * Exit codes: 0 ok, 1 runtime failure, 2 usage error.
 */
import { parseArgs } from 'node:util';
import {
  PARTICIPANT_TOKEN_PREFIX,
  PairingCode,
  isTetherError,
  type ParticipantId,
  type ParticipantRole,
} from '@tether/contracts';
import type { ParticipantPrincipal } from '../auth/principal.js';
import { createParticipantWithToken, revokeTokenTree } from '../auth/participant-tokens.js';
import { hashToken } from '../auth/tokens.js';
import { EmbeddedPostgresError } from '../db/embedded.js';
import { runMigrations } from '../db/migrate.js';
import { createDb, type Db } from '../db/pool.js';
import { approveRequest, listRequests, rejectRequest } from '../pairing/service.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabaseForCommand } from './database.js';
import { createLogger } from './logger.js';
import { startTether, type RunningTether } from './main.js';
import { logStartupFailure } from './startup.js';

const USAGE = `Usage:
  tether-server serve                              run the server (default)
  tether-server migrate                            apply database migrations and exit
  tether-server token create --name NAME [--admin] create a participant and print its token
  tether-server token revoke <tokenId|token>       revoke a participant token
  tether-server pairing list [--all]               pending pairing requests (--all: every state)
  tether-server pairing approve <code|requestId> [--as PARTICIPANT_ID]
  tether-server pairing reject <code|requestId> [--as PARTICIPANT_ID]
                                                   decide a request by the code its device shows
                                                   (or its id), as the oldest active admin
                                                   unless --as names another participant

Commands work while the server runs: they use its embedded database (or DATABASE_URL).

Configuration comes from the environment (see docs/operations.md): TETHER_PORT,
TETHER_DATA_DIR, DATABASE_URL, TETHER_BOOTSTRAP_TOKEN, ...`;

class UsageError extends Error {}

/**
 * Runs `fn` with a database: DATABASE_URL, or the embedded one under the data dir — started for
 * the command, or the running server's when a server owns it.
 */
async function withDatabase<T>(config: Config, fn: (url: string) => Promise<T>): Promise<T> {
  const opened = await openDatabaseForCommand(config, {
    notice: (message, detail) => console.error(`${message} ${JSON.stringify(detail)}`),
    attached: ({ pid }) =>
      console.error(`using the database of the running server (process ${pid})`),
  });
  try {
    return await fn(opened.url);
  } finally {
    await opened.close();
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function withDb<T>(url: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = createDb({ connectionString: url, max: 1 });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/**
 * Who a pairing command acts as (the approver owns the node): `--as` names a participant;
 * otherwise the oldest active admin. A person at the server's console is trusted like an admin.
 */
async function actingAdmin(
  db: Db,
  as: string | undefined,
): Promise<ParticipantPrincipal & { name: string }> {
  if (as !== undefined && !UUID.test(as)) throw new UsageError(`--as needs a participant id`);
  const { rows } = await db.query<{ id: string; name: string; role: ParticipantRole }>(
    as === undefined
      ? `SELECT id, name, role FROM participants
          WHERE role = 'admin' AND disabled_at IS NULL ORDER BY created_at, id LIMIT 1`
      : `SELECT id, name, role FROM participants WHERE id = $1 AND disabled_at IS NULL`,
    as === undefined ? [] : [as],
  );
  const row = rows[0];
  if (!row) {
    throw new Error(
      as === undefined
        ? 'no active admin to act as; create one: tether-server token create --admin --name you'
        : `no active participant ${as}`,
    );
  }
  return {
    kind: 'participant',
    participantId: row.id as ParticipantId,
    role: row.role,
    name: row.name,
  };
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
  // Listening from the start: a signal that arrives while the server is still starting stops
  // it as soon as it has started (Node's default would kill the process mid-start).
  let running: RunningTether | undefined = undefined;
  let stopRequested = false;
  let signals = 0;
  const stop = (): void => {
    const hardStop = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 1_500);
    hardStop.unref();
    // A stop the operator asked for is a success: exit 0 (see docs/operations.md).
    running!.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    // pnpm and tsx relay the terminal's signal, so one Ctrl-C can arrive two or three times:
    // repeats are ignored; the hard-stop timer bounds the shutdown anyway.
    signals++;
    if (signals > 1) return;
    log.info({ signal }, 'signal received');
    stopRequested = true;
    if (running) stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    running = await startTether(config, { logger: log });
  } catch (error) {
    logStartupFailure(log, error, config);
    process.exit(1);
  }
  if (stopRequested) stop();
}

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      admin: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      as: { type: 'string' },
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
  if (command === 'pairing' && sub === 'list') {
    const items = await withDatabase(config, (url) =>
      withDb(url, async (db) =>
        listRequests(db, await actingAdmin(db, values.as), values.all ? {} : { state: 'pending' }),
      ),
    );
    if (items.items.length === 0) {
      console.log(values.all ? 'no pairing requests' : 'no pending pairing requests');
      return;
    }
    for (const r of items.items) {
      const node = r.nodeId ?? r.requestedNodeId;
      console.log(
        [
          r.pairingCode,
          r.state.padEnd(8),
          r.requestId,
          `${JSON.stringify(r.name)} (${r.nodeType}${node ? `, node ${node}` : ''})`,
          r.state === 'pending' ? `expires ${r.expiresAt.toISOString()}` : '',
        ]
          .filter(Boolean)
          .join('  '),
      );
    }
    return;
  }
  if (command === 'pairing' && (sub === 'approve' || sub === 'reject')) {
    if (!arg) throw new UsageError(`pairing ${sub} needs the pairing code (or the request id)`);
    const target = UUID.test(arg) ? { requestId: arg } : { pairingCode: arg };
    if (!('requestId' in target) && !PairingCode.safeParse(arg).success) {
      throw new UsageError(
        `not a pairing code or a request id: ${arg} (a code looks like K7QF-2M9D)`,
      );
    }
    const outcome = await withDatabase(config, (url) =>
      withDb(url, async (db) => {
        const actor = await actingAdmin(db, values.as);
        if (sub === 'reject') return { decision: await rejectRequest(db, actor, target), actor };
        const decision = await approveRequest(db, actor, target, {
          memberNodeIds: config.memberNodeIds,
        });
        const { rows } = await db.query<{ node_id: string | null }>(
          `SELECT node_id FROM pairing_requests WHERE id = $1`,
          [decision.requestId],
        );
        return { decision, actor, nodeId: rows[0]?.node_id ?? null };
      }),
    );
    const as = `as ${outcome.actor.name} (${outcome.actor.participantId})`;
    console.log(
      sub === 'approve'
        ? `approved request ${outcome.decision.requestId} ${as}: node ${outcome.nodeId ?? '?'}; the device collects its token on its next poll`
        : `rejected request ${outcome.decision.requestId} ${as}`,
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
  if (isTetherError(error)) {
    console.error(`${error.code}: ${error.message}`);
    process.exit(1);
  }
  if (error instanceof ConfigError || error instanceof EmbeddedPostgresError) {
    console.error(error.message);
    process.exit(1);
  }
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
