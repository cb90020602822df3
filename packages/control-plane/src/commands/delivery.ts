/**
 * Commands, the node side: delivery (the `runtimenode.commands` stream and the REST poll),
 * acknowledgement and result. Only the addressed node sees or answers a command: any other
 * caller gets `command.not_found`, the answer for a command that does not exist.
 *
 * Delivery is at least once. Sending marks the row `delivered` (attempts + 1) in the database
 * first; a stream that starts (a connect, a reconnect after a restart or on another replica)
 * sends every open command of its node again, so a command is lost neither by a dead socket nor
 * by a dead server; the node deduplicates by `commandId`. A live stream is woken when its node's
 * commands change (commands/signals.ts) and then takes the `pending` ones: concurrent streams
 * of one node (two sockets, two replicas) take each one once, by the guarded UPDATE.
 */
import {
  COMMAND_OPEN_PER_NODE_MAX,
  COMMAND_OUTPUT_MAX_BYTES,
  TetherError,
  isTerminalCommandState,
  type CommandAckInput,
  type CommandDelivery,
  type CommandResultInput,
  type CommandState,
  type NodeCommandMessage,
} from '@tether/contracts';
import type { NodePrincipal } from '../auth/principal.js';
import { assertNodeSelf } from '../auth/principal.js';
import type { Db, Sql } from '../db/pool.js';
import { feedWritten } from '../events/append.js';
import {
  appendStateChanged,
  canonicalJson,
  COMMAND_COLUMNS,
  DELIVERABLE_SQL,
  parseCommandRow,
  systemTransitionEventsSql,
  toDelivery,
  type CommandRow,
} from './rows.js';
import { Wakeup, type CommandSignals } from './signals.js';
import { jsonBytes } from './validation.js';

function notFound(): TetherError {
  return new TetherError('command.not_found', 'No such command addressed to this node.');
}

function assertSelf(principal: NodePrincipal, nodeId: string | undefined): void {
  if (nodeId !== undefined) assertNodeSelf(principal, { nodeId });
}

/**
 * Marks and returns the node's commands to send, oldest first: `all` — every open one not past
 * its deadline (pending, delivered, running: a (re)start of delivery); `pending` — those not sent
 * yet. Pending ones become `delivered` (with their event); every returned one counts an attempt.
 */
export async function takeForDelivery(
  db: Sql,
  nodeId: string,
  which: 'all' | 'pending',
  limit: number,
): Promise<CommandRow[]> {
  const states = which === 'all' ? DELIVERABLE_SQL : `('pending')`;
  const { rows } = await db.query(
    `WITH picked AS (
       SELECT c.id, c.state AS from_state FROM node_commands c
        WHERE c.node_id = $1 AND c.state IN ${states} AND c.expires_at > now()
        ORDER BY c.created_at, c.id
        LIMIT $2
        FOR UPDATE
     ), upd AS (
       UPDATE node_commands c
          SET state = CASE WHEN c.state = 'pending' THEN 'delivered' ELSE c.state END,
              delivered_at = COALESCE(c.delivered_at, now()),
              attempts = c.attempts + 1,
              revision = c.revision + CASE WHEN c.state = 'pending' THEN 1 ELSE 0 END
         FROM picked
        WHERE c.id = picked.id AND c.state IN ${DELIVERABLE_SQL}
        RETURNING ${COMMAND_COLUMNS}, picked.from_state, c.state AS to_state
     ), events AS (
       ${systemTransitionEventsSql('upd', 'delivery')}
     )
     SELECT * FROM upd ORDER BY created_at, id`,
    [nodeId, limit],
  );
  if (rows.some((r) => r.from_state === 'pending')) feedWritten(db);
  return rows.map(parseCommandRow);
}

/**
 * `runtimenode.pendingCommands` (REST nodes): every open command of the calling node, marked
 * delivered. Polling again returns the ones still unanswered (at least once).
 */
export async function pendingCommands(
  db: Db,
  principal: NodePrincipal,
  input: { nodeId?: string | undefined; limit?: number | undefined } | undefined,
): Promise<{ commands: CommandDelivery[] }> {
  assertSelf(principal, input?.nodeId);
  const rows = await takeForDelivery(
    db,
    principal.nodeId,
    'all',
    input?.limit ?? COMMAND_OPEN_PER_NODE_MAX,
  );
  return { commands: rows.map(toDelivery) };
}

/**
 * `runtimenode.commands`: the node's open commands, then each new one as it comes, and a
 * `cancel` for each command sent on this stream that was cancelled or expired. Ends when
 * `signal` aborts (with its TetherError if the credential ended) or, over HTTP, when the server
 * shuts down (see `CommandSignals.shutdown`).
 */
export async function* streamCommands(
  db: Db,
  signals: CommandSignals,
  principal: NodePrincipal,
  input: { nodeId?: string | undefined } | undefined,
  signal: AbortSignal,
  transport: 'http' | 'ws',
): AsyncGenerator<NodeCommandMessage> {
  assertSelf(principal, input?.nodeId);
  const nodeId = principal.nodeId;
  const wakeup = new Wakeup();
  // Registered before the first read: a command invoked meanwhile wakes the next one.
  const unregister = signals.watchNode(nodeId, wakeup);
  /** Sent on this stream and not yet seen ending. */
  const sent = new Set<string>();
  let first = true;
  try {
    for (;;) {
      if (!(await signals.next(wakeup, transport, signal))) return;
      const rows = await takeForDelivery(
        db,
        nodeId,
        first ? 'all' : 'pending',
        COMMAND_OPEN_PER_NODE_MAX,
      );
      first = false;
      // A full batch: look again at once.
      if (rows.length === COMMAND_OPEN_PER_NODE_MAX) wakeup.wake();
      for (const row of rows) {
        sent.add(row.id);
        yield { kind: 'command', command: toDelivery(row) };
      }
      if (sent.size === 0) continue;
      const { rows: ended } = await db.query<{ id: string; state: CommandState }>(
        `SELECT id::text, state FROM node_commands
          WHERE id = ANY($1::uuid[]) AND state NOT IN ${DELIVERABLE_SQL}`,
        [[...sent]],
      );
      for (const row of ended) {
        sent.delete(row.id);
        if (row.state === 'cancelled' || row.state === 'expired') {
          yield { kind: 'cancel', commandId: row.id, reason: row.state } as NodeCommandMessage;
        }
      }
    }
  } finally {
    unregister();
  }
}

interface Addressed {
  row: CommandRow;
  overdue: boolean;
}

/** The command, locked, if it is addressed to this node and was ever sendable. */
async function addressed(
  sql: Sql,
  principal: NodePrincipal,
  commandId: string,
): Promise<Addressed> {
  const { rows } = await sql.query<Record<string, unknown> & { overdue: boolean }>(
    `SELECT ${COMMAND_COLUMNS}, c.expires_at <= now() AS overdue
       FROM node_commands c
      WHERE c.id = $1 AND c.node_id = $2
      FOR UPDATE`,
    [commandId, principal.nodeId],
  );
  const raw = rows[0];
  if (!raw) throw notFound();
  const row = parseCommandRow(raw);
  // Never sent to the node: it does not exist as far as the node can tell.
  if (row.state === 'awaiting_approval' || (row.state === 'denied' && row.delivered_at === null)) {
    throw notFound();
  }
  return { row, overdue: raw.overdue };
}

async function nodeTransition(
  sql: Sql,
  principal: NodePrincipal,
  row: CommandRow,
  to: CommandState,
  set: { output?: unknown; error?: unknown },
  reason?: string,
): Promise<CommandRow> {
  const { rows } = await sql.query(
    `UPDATE node_commands c
        SET state = $2, revision = c.revision + 1,
            delivered_at = COALESCE(c.delivered_at, now()),
            started_at = COALESCE(c.started_at, now()),
            finished_at = CASE WHEN $2 IN ('succeeded', 'failed') THEN now() ELSE NULL END,
            output = $3::jsonb, error = $4::jsonb
      WHERE c.id = $1
      RETURNING ${COMMAND_COLUMNS}`,
    [
      row.id,
      to,
      set.output === undefined ? null : JSON.stringify(set.output),
      set.error === undefined ? null : JSON.stringify(set.error),
    ],
  );
  await appendStateChanged(sql, row, to, { kind: 'node', nodeId: principal.nodeId }, reason);
  return parseCommandRow(rows[0]);
}

/**
 * `runtimenode.commandack`: the node started the command → `running`. Repeating it changes
 * nothing; for a command that already ended (or passed its deadline) it answers that state, so
 * the node knows not to run it.
 */
export async function ackCommand(
  db: Db,
  signals: CommandSignals,
  principal: NodePrincipal,
  input: CommandAckInput,
): Promise<{ commandId: string; state: CommandState }> {
  assertSelf(principal, input.nodeId);
  const result = await db.tx(async (sql) => {
    const { row, overdue } = await addressed(sql, principal, input.commandId);
    if (isTerminalCommandState(row.state) || row.state === 'running') {
      return { row, changed: false, state: row.state };
    }
    if (overdue) return { row, changed: false, state: 'expired' as const };
    const updated = await nodeTransition(sql, principal, row, 'running', {});
    return { row: updated, changed: true, state: updated.state };
  });
  if (result.changed) signals.wakeCommand(result.row.id);
  return { commandId: result.row.id, state: result.state };
}

function storedError(error: NonNullable<CommandResultInput['error']>): Record<string, unknown> {
  return {
    code: error.code ?? null,
    message: error.message,
    ...(error.details === undefined ? {} : { details: error.details }),
  };
}

/**
 * `runtimenode.commandresult`: the command's outcome → `succeeded` or `failed`. The same result
 * again is accepted (a node that retries after a lost answer); a different one for a finished
 * command is `command.result_conflict`. A result for a command that was cancelled or expired
 * first changes nothing (`accepted: false`).
 */
export async function commandResult(
  db: Db,
  signals: CommandSignals,
  principal: NodePrincipal,
  input: CommandResultInput,
): Promise<{ commandId: string; state: CommandState; accepted: boolean }> {
  assertSelf(principal, input.nodeId);
  const outcome = input.ok
    ? { output: input.output ?? null }
    : { error: storedError(input.error!) };
  const bytes = jsonBytes(input.ok ? outcome.output : outcome.error);
  if (bytes > COMMAND_OUTPUT_MAX_BYTES) {
    throw new TetherError(
      'command.output_too_large',
      `The result serialises to ${bytes} bytes; the limit is ${COMMAND_OUTPUT_MAX_BYTES}.`,
      { bytes, maxBytes: COMMAND_OUTPUT_MAX_BYTES },
    );
  }
  const to: CommandState = input.ok ? 'succeeded' : 'failed';
  const result = await db.tx(async (sql) => {
    const { row, overdue } = await addressed(sql, principal, input.commandId);
    if (row.state === 'succeeded' || row.state === 'failed') {
      const same =
        row.state === to &&
        (input.ok
          ? canonicalJson(row.output) === canonicalJson(outcome.output)
          : canonicalJson(row.error) === canonicalJson(outcome.error));
      if (!same) {
        throw new TetherError(
          'command.result_conflict',
          'The command already has a different result.',
          { state: row.state },
        );
      }
      return { row, changed: false, state: row.state, accepted: true };
    }
    if (isTerminalCommandState(row.state)) {
      return { row, changed: false, state: row.state, accepted: false };
    }
    if (overdue) return { row, changed: false, state: 'expired' as const, accepted: false };
    const reason = input.ok ? undefined : (input.error!.code ?? undefined);
    const updated = await nodeTransition(sql, principal, row, to, outcome, reason);
    return { row: updated, changed: true, state: updated.state, accepted: true };
  });
  if (result.changed) signals.wakeCommand(result.row.id);
  return { commandId: result.row.id, state: result.state, accepted: result.accepted };
}
