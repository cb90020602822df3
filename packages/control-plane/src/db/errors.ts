/**
 * The one place that turns PostgreSQL errors (SQLSTATE + constraint name) into `TetherError`s.
 * Constraint names are part of the schema contract (migrations/), so they are matched exactly.
 */
import { TetherError } from '@tether/contracts';

interface PgErrorLike {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
}

/** Unique violations (23505) by constraint name. */
const UNIQUE_VIOLATIONS: Record<string, () => TetherError> = {
  runtime_node_attachments_one_active_per_node: () =>
    new TetherError(
      'runtimenode.attach_conflict',
      'The node already has an active attachment to another session.',
    ),
  nodes_pkey: () => new TetherError('node.id_taken', 'A node with this id is already registered.'),
  session_memberships_session_participant_key: () =>
    new TetherError(
      'membership.already_exists',
      'The participant is already a member of the session.',
    ),
};

/** Foreign-key violations (23503) by constraint name. */
const FK_VIOLATIONS: Record<string, () => TetherError> = {
  session_memberships_participant_id_fkey: () =>
    new TetherError('participant.not_found', 'No such participant.'),
  session_memberships_session_id_fkey: () =>
    new TetherError('session.not_found', 'No such session.'),
  runtime_node_presence_node_id_fkey: () => new TetherError('node.not_found', 'No such node.'),
  nodes_owner_participant_id_fkey: () =>
    new TetherError('participant.not_found', 'No such participant.'),
  sessions_created_by_fkey: () => new TetherError('participant.not_found', 'No such participant.'),
};

/** Data exceptions caused by a value the caller sent (not e.g. division by zero, a server bug). */
const INPUT_DATA_EXCEPTIONS = new Set([
  '22001',
  '22003',
  '22007',
  '22008',
  '22021',
  '22023',
  '22P02',
  '22P05',
]);

const UNAVAILABLE_CLASSES = ['08', '53', '57', '58'];
const RETRYABLE_CODES = new Set(['40001', '40P01', '55P03']);

export function translateDbError(error: unknown): TetherError {
  if (error instanceof TetherError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as PgErrorLike;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const constraint = typeof e.constraint === 'string' ? e.constraint : undefined;

  if (code === '23505' && constraint !== undefined) {
    const make = UNIQUE_VIOLATIONS[constraint];
    if (make) return withCause(make(), error);
  }
  if (code === '23503' && constraint !== undefined) {
    const make = FK_VIOLATIONS[constraint];
    if (make) return withCause(make(), error);
  }
  if (
    code !== undefined &&
    (RETRYABLE_CODES.has(code) || UNAVAILABLE_CLASSES.includes(code.slice(0, 2)))
  ) {
    return withCause(
      new TetherError('system.unavailable', 'The database is unavailable or busy; retry.'),
      error,
    );
  }
  if (code === '23514' || (code !== undefined && INPUT_DATA_EXCEPTIONS.has(code))) {
    return withCause(
      new TetherError('request.invalid', 'A value was rejected by the database.'),
      error,
    );
  }
  // Connection-level failures from the driver carry errno-style codes, not SQLSTATEs.
  if (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ETIMEDOUT' ||
    code === 'EPIPE'
  ) {
    return withCause(
      new TetherError('system.unavailable', 'The database is unreachable; retry.'),
      error,
    );
  }
  if (
    error instanceof Error &&
    /Connection terminated|timeout exceeded when trying to connect/i.test(error.message)
  ) {
    return withCause(
      new TetherError('system.unavailable', 'The database is unreachable; retry.'),
      error,
    );
  }
  return withCause(new TetherError('system.internal', 'Unexpected database error.'), error);
}

function withCause(error: TetherError, cause: unknown): TetherError {
  // Keep the original for logs; the error formatter never sends `cause` to clients.
  Object.defineProperty(error, 'cause', { value: cause, enumerable: false });
  return error;
}
