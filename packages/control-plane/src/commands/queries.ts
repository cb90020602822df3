/**
 * Commands, the participant's reads: `command.get`, `command.list` and `command.watch`. A command
 * is visible to its caller, its node's owner and admins; anyone else gets `command.not_found`,
 * the answer for a command that does not exist.
 */
import {
  TetherError,
  isTerminalCommandState,
  type CommandListInput,
  type CommandView,
} from '@tether/contracts';
import type { ParticipantPrincipal } from '../auth/principal.js';
import { isAdmin } from '../auth/principal.js';
import { cursorTimestamp, decodeCursor, pageLimit, Params, toPage } from '../db/pagination.js';
import type { Sql } from '../db/pool.js';
import { COMMAND_COLUMNS, parseCommandRow, toCommandView, type CommandRow } from './rows.js';
import { Wakeup, type CommandSignals } from './signals.js';

function notFound(): TetherError {
  return new TetherError('command.not_found', 'No such command visible to the caller.');
}

/** The caller, the node's owner, or an admin (`c` the command, `n` its node). */
function commandVisible(admin: string, viewer: string): string {
  return `(${admin} OR c.caller_participant_id = ${viewer} OR n.owner_participant_id = ${viewer})`;
}

interface Found {
  row: CommandRow;
  ownerParticipantId: string;
}

export async function findVisible(
  sql: Sql,
  actor: ParticipantPrincipal,
  commandId: string,
  lock: boolean,
): Promise<Found> {
  const { rows } = await sql.query<Record<string, unknown> & { owner: string }>(
    `SELECT ${COMMAND_COLUMNS}, n.owner_participant_id::text AS owner
       FROM node_commands c JOIN nodes n ON n.node_id = c.node_id
      WHERE c.id = $1 AND ${commandVisible('$2::boolean', '$3::uuid')}
      ${lock ? 'FOR UPDATE OF c' : ''}`,
    [commandId, isAdmin(actor), actor.participantId],
  );
  if (!rows[0]) throw notFound();
  return { row: parseCommandRow(rows[0]), ownerParticipantId: rows[0].owner };
}

export async function getCommand(
  db: Sql,
  actor: ParticipantPrincipal,
  commandId: string,
): Promise<CommandView> {
  return toCommandView((await findVisible(db, actor, commandId, false)).row);
}

/** Newest first; filters by node, session, state, caller; keyset pages. */
export async function listCommands(
  db: Sql,
  actor: ParticipantPrincipal,
  input: CommandListInput,
): Promise<{ items: CommandView[]; nextCursor: string | null }> {
  const filters = input ?? {};
  const limit = pageLimit(filters.limit);
  const after = decodeCursor('command', filters.cursor);
  const params = new Params();
  const where: string[] = [];
  if (!isAdmin(actor))
    where.push(commandVisible('false', `${params.add(actor.participantId)}::uuid`));
  if (filters.nodeId !== undefined) where.push(`c.node_id = ${params.add(filters.nodeId)}`);
  if (filters.sessionId !== undefined) {
    where.push(`c.session_id = ${params.add(filters.sessionId)}::uuid`);
  }
  if (filters.state !== undefined) where.push(`c.state = ${params.add(filters.state)}`);
  if (filters.callerParticipantId !== undefined) {
    where.push(`c.caller_participant_id = ${params.add(filters.callerParticipantId)}::uuid`);
  }
  if (after) {
    where.push(
      `(c.created_at, c.id) < (${params.add(after[0])}::timestamptz, ${params.add(after[1])}::uuid)`,
    );
  }
  const { rows } = await db.query<Record<string, unknown> & { cursor_at: string; id: string }>(
    `SELECT ${COMMAND_COLUMNS}, ${cursorTimestamp('c.created_at')} AS cursor_at
       FROM node_commands c JOIN nodes n ON n.node_id = c.node_id
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY c.created_at DESC, c.id DESC
      LIMIT ${params.add(limit + 1)}`,
    params.values,
  );
  return toPage(
    rows,
    limit,
    (r) => toCommandView(parseCommandRow(r)),
    'command',
    (r) => [r.cursor_at, r.id],
  );
}

/**
 * `command.watch`: the command now, then again after each of its transitions, until it ends.
 * Each update carries the row's revision (its transition count): resuming with the last one
 * received skips what the watcher already has. Ends quietly when `signal` aborts (a credential
 * that ended aborts it with its error, which is thrown).
 */
export async function* watchCommand(
  db: Sql,
  signals: CommandSignals,
  actor: ParticipantPrincipal,
  input: { commandId: string; lastEventId?: string | null | undefined },
  signal: AbortSignal,
  transport: 'http' | 'ws',
): AsyncGenerator<{ revision: number; command: CommandView }> {
  const wakeup = new Wakeup();
  const unregister = signals.watchCommand(input.commandId, wakeup);
  let last = input.lastEventId == null ? 0 : Number(input.lastEventId);
  try {
    for (;;) {
      if (!(await signals.next(wakeup, transport, signal))) return;
      const { row } = await findVisible(db, actor, input.commandId, false);
      if (row.revision > last) {
        last = row.revision;
        yield { revision: row.revision, command: toCommandView(row) };
      }
      if (isTerminalCommandState(row.state)) return;
    }
  } finally {
    unregister();
  }
}
