/**
 * What a server that cannot start says, and how long it waits for its database.
 *  - The database is retried with exponential backoff (200 ms doubling to 5 s) for at most
 *    `TETHER_DB_CONNECT_TIMEOUT_MS`: in a deployment the database often comes up after the
 *    server (compose, a Kubernetes pod restarting next to it). Each failed attempt is one warn
 *    line with the attempt, the delay and the cause.
 *  - Every failure to start ends as one JSON line at fatal level: what failed, the variable to
 *    check, the cause's message — never a password (URLs are redacted, and the password is
 *    scrubbed from any message that might quote it) and never a raw stack trace.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { probeDatabase } from '../db/probe.js';
import { ConfigError, type Config } from './config.js';

export const DB_RETRY_INITIAL_MS = 200;
export const DB_RETRY_MAX_MS = 5_000;
/** One attempt waits at most this long for an answer (a black-holed address never refuses). */
const PROBE_TIMEOUT_MS = 5_000;

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db` (unparsable → a placeholder). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a valid URL)';
  }
}

const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/\s]*@/gi;

/** A message with every URL password and the given secrets replaced by `***`. */
export function scrubSecrets(message: string, secrets: (string | undefined)[]): string {
  let out = message.replace(URL_CREDENTIALS, '$1***@');
  for (const secret of secrets) {
    if (secret && secret.length >= 3) out = out.split(secret).join('***');
  }
  return out;
}

function passwordOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    // Node's "connect ECONNREFUSED" for every address of a host: the first says it.
    return messageOf(error.errors[0]);
  }
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** Why a database attempt failed, in words an operator can act on. */
export function databaseCause(error: unknown): string {
  const code = errorCode(error);
  const message = messageOf(error);
  switch (code) {
    case 'ECONNREFUSED':
      return `connection refused (${message}): nothing listens at that host and port`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found (${message})`;
    case 'ETIMEDOUT':
      return `no answer (${message})`;
    case '28P01':
    case '28000':
      return `authentication failed (${message}): check the user and password`;
    case '3D000':
      return `the database does not exist (${message})`;
    case '57P03':
      return `the database is starting up (${message})`;
    default:
      return code ? `${message} (${code})` : message;
  }
}

export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
  constructor(
    readonly attempts: number,
    readonly elapsedMs: number,
    readonly lastCause: string,
  ) {
    super(`gave up after ${attempts} attempts in ${elapsedMs} ms: ${lastCause}`);
  }
}

export interface WaitForDatabaseOptions {
  /** Total time allowed; 0 = one attempt. */
  timeoutMs: number;
  /** The variable that names this database (for the log lines). */
  variable: string;
  log: Logger;
  /** The attempt itself (tests inject a failing one). */
  probe?: (url: string, timeoutMs: number) => Promise<void>;
}

/**
 * Resolves once the database answers; retries with exponential backoff until `timeoutMs` has
 * passed, then throws `DatabaseUnavailableError`.
 */
export async function waitForDatabase(url: string, options: WaitForDatabaseOptions): Promise<void> {
  const probe = options.probe ?? probeDatabase;
  const started = performance.now();
  const deadline = started + options.timeoutMs;
  const secrets = [passwordOf(url)];
  let delay = DB_RETRY_INITIAL_MS;
  for (let attempt = 1; ; attempt++) {
    const left = deadline - performance.now();
    try {
      await probe(url, Math.max(100, Math.min(PROBE_TIMEOUT_MS, left)));
      if (attempt > 1) {
        options.log.info(
          { attempts: attempt, elapsedMs: Math.round(performance.now() - started) },
          'database reachable',
        );
      }
      return;
    } catch (error) {
      const cause = scrubSecrets(databaseCause(error), secrets);
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        throw new DatabaseUnavailableError(attempt, Math.round(performance.now() - started), cause);
      }
      const wait = Math.min(delay, remaining);
      options.log.warn(
        {
          attempt,
          delayMs: Math.round(wait),
          variable: options.variable,
          database: redactUrl(url),
          cause,
        },
        'database unavailable; retrying',
      );
      await sleep(wait);
      delay = Math.min(delay * 2, DB_RETRY_MAX_MS);
    }
  }
}

export interface StartupFailure {
  /** What failed (the log line's message). */
  message: string;
  fields: Record<string, unknown>;
}

/** The one line a server that cannot start logs at fatal level. */
export function describeStartupFailure(error: unknown, config: Config | undefined): StartupFailure {
  const secrets = [passwordOf(config?.databaseUrl), config?.bootstrapToken, config?.metricsToken];
  const scrub = (text: string): string => scrubSecrets(text, secrets);
  const databaseVariable = config?.databaseUrl ? 'DATABASE_URL' : 'TETHER_DATA_DIR';
  const database = config?.databaseUrl ? redactUrl(config.databaseUrl) : 'embedded';

  if (error instanceof ConfigError) {
    return {
      message: 'invalid configuration',
      fields: {
        variables: error.issues.map((i) => i.variable),
        issues: error.issues,
        cause: scrub(error.message),
      },
    };
  }
  if (error instanceof DatabaseUnavailableError) {
    return {
      message: 'database unavailable; giving up',
      fields: {
        variable: databaseVariable,
        database,
        attempts: error.attempts,
        elapsedMs: error.elapsedMs,
        cause: scrub(error.lastCause),
        hint: `check ${databaseVariable}; the wait is bounded by TETHER_DB_CONNECT_TIMEOUT_MS`,
      },
    };
  }
  const code = errorCode(error);
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    const port = (error as { port?: unknown }).port;
    const metrics = config?.metricsListen !== undefined && port === config.metricsListen.port;
    return {
      message: 'cannot listen',
      fields: {
        variable: metrics ? 'TETHER_METRICS_LISTEN' : 'TETHER_PORT',
        cause: scrub(messageOf(error)),
      },
    };
  }
  if (error instanceof Error && error.name.startsWith('EmbeddedPostgres')) {
    return {
      message: 'embedded PostgreSQL could not start',
      fields: {
        variable: 'TETHER_DATA_DIR',
        cause: scrub(messageOf(error)),
        hint: 'or set DATABASE_URL to use another PostgreSQL',
      },
    };
  }
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    // A PostgreSQL error after the database answered (migrations, the bootstrap admin).
    return {
      message: 'database error at start',
      fields: { variable: databaseVariable, database, code, cause: scrub(databaseCause(error)) },
    };
  }
  const stack = error instanceof Error ? error.stack : undefined;
  return {
    message: 'startup failed',
    fields: {
      cause: scrub(messageOf(error)),
      // Inside the JSON line (one line), for a bug report; scrubbed like the rest.
      ...(stack ? { stack: scrub(stack) } : {}),
    },
  };
}

/** Logs the failure as one fatal JSON line. */
export function logStartupFailure(log: Logger, error: unknown, config: Config | undefined): void {
  const { message, fields } = describeStartupFailure(error, config);
  log.fatal(fields, message);
}
