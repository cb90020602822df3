/**
 * Commands, the participant side: invoke (invoke.ts), cancel, approve, deny; the reads (get,
 * list, watch) are queries.ts, the node side delivery.ts.
 *
 * Invariants:
 *  - a command row is committed, with its `command.invoked` event, before anything is sent; the
 *    node learns of it from the database (commands/delivery.ts), never from memory;
 *  - every transition is one guarded UPDATE of a locked row plus its `command.state_changed`
 *    event in the same transaction; a terminal state is never left;
 *  - idempotency keys and the access policy's decision: invoke.ts;
 *  - approving or denying a gated command is for its node's owner or an admin, before it expires;
 *  - a command is visible to its caller, its node's owner and admins (anyone else: not found).
 */
import {
  TetherError,
  isTerminalCommandState,
  type CommandState,
  type CommandView,
} from '@tether/contracts';
import { mayDecideGated } from '../access-policy/decide.js';
import type { ParticipantPrincipal } from '../auth/principal.js';
import type { Db, Sql } from '../db/pool.js';
import { findVisible } from './queries.js';
import {
  appendStateChanged,
  COMMAND_COLUMNS,
  parseCommandRow,
  toCommandView,
  type CommandRow,
} from './rows.js';
import type { CommandSignals } from './signals.js';

export { invoke } from './invoke.js';

function notOpen(row: CommandRow, expected?: CommandState): TetherError {
  return new TetherError(
    'command.not_open',
    expected === undefined
      ? `The command already ended (${row.state}).`
      : `The command is ${row.state}, not ${expected}.`,
    { state: row.state },
  );
}

/** One participant-made transition of a locked row, with its event. */
async function transition(
  sql: Sql,
  row: CommandRow,
  actor: ParticipantPrincipal,
  to: CommandState,
  reason: string | undefined,
): Promise<CommandRow> {
  const terminal = isTerminalCommandState(to);
  const error =
    to === 'cancelled' || to === 'denied'
      ? JSON.stringify({ code: to, message: reason ?? `${to} by ${actor.participantId}` })
      : null;
  const { rows } = await sql.query(
    `UPDATE node_commands c
        SET state = $2, decided_by = $3, revision = c.revision + 1,
            finished_at = CASE WHEN $4::boolean THEN now() ELSE c.finished_at END,
            error = COALESCE($5::jsonb, c.error)
      WHERE c.id = $1
      RETURNING ${COMMAND_COLUMNS}`,
    [row.id, to, actor.participantId, terminal, error],
  );
  const updated = parseCommandRow(rows[0]);
  await appendStateChanged(
    sql,
    row,
    to,
    { kind: 'participant', participantId: actor.participantId },
    reason,
  );
  return updated;
}

/** Cancels an open command (its caller, its node's owner, or an admin). */
export async function cancelCommand(
  db: Db,
  signals: CommandSignals,
  actor: ParticipantPrincipal,
  input: { commandId: string; reason?: string | undefined },
): Promise<CommandView> {
  const updated = await db.tx(async (sql) => {
    const { row } = await findVisible(sql, actor, input.commandId, true);
    if (isTerminalCommandState(row.state)) throw notOpen(row);
    return transition(sql, row, actor, 'cancelled', input.reason);
  });
  signals.wakeNode(updated.node_id);
  signals.wakeCommand(updated.id);
  return toCommandView(updated);
}

async function decide(
  db: Db,
  signals: CommandSignals,
  actor: ParticipantPrincipal,
  input: { commandId: string; reason?: string | undefined },
  to: 'pending' | 'denied',
): Promise<CommandView> {
  const updated = await db.tx(async (sql) => {
    const { row } = await findVisible(sql, actor, input.commandId, true);
    const allowed = await mayDecideGated(sql, { principal: actor, nodeId: row.node_id });
    if (!allowed) {
      throw new TetherError(
        'command.permission_denied',
        "Only the node's owner or an admin may approve or deny its commands.",
        { reason: 'not_owner' },
      );
    }
    if (row.state !== 'awaiting_approval') throw notOpen(row, 'awaiting_approval');
    const { rows: due } = await sql.query<{ overdue: boolean }>(
      `SELECT $1::timestamptz <= now() AS overdue`,
      [row.expires_at],
    );
    if (due[0]?.overdue) {
      throw new TetherError('command.not_open', 'The command expired awaiting approval.', {
        state: 'expired',
      });
    }
    return transition(sql, row, actor, to, to === 'denied' ? input.reason : undefined);
  });
  signals.wakeNode(updated.node_id);
  signals.wakeCommand(updated.id);
  return toCommandView(updated);
}

export function approveCommand(
  db: Db,
  signals: CommandSignals,
  actor: ParticipantPrincipal,
  input: { commandId: string },
): Promise<CommandView> {
  return decide(db, signals, actor, input, 'pending');
}

export function denyCommand(
  db: Db,
  signals: CommandSignals,
  actor: ParticipantPrincipal,
  input: { commandId: string; reason?: string | undefined },
): Promise<CommandView> {
  return decide(db, signals, actor, input, 'denied');
}
