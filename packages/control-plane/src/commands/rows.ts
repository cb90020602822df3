/** The `node_commands` row, its wire view, and the SQL pieces every command writer shares. */
import {
  fleetEvent,
  CommandState,
  type CommandActor,
  DELIVERABLE_COMMAND_STATES,
  TERMINAL_COMMAND_STATES,
  type CommandDelivery,
  type CommandView,
} from '@tether/contracts';
import { z } from 'zod';
import { parseRow } from '../db/rows.js';
import type { Sql } from '../db/pool.js';
import { sqlTextList } from '../db/sql-lists.js';
import { appendEvent, eventPayloadSql } from '../events/append.js';

/** States a command can still leave (the sweep's and the per-node cap's "open"). */
export const OPEN_STATES = ['awaiting_approval', ...DELIVERABLE_COMMAND_STATES] as const;
export const OPEN_SQL = sqlTextList(OPEN_STATES);
export const DELIVERABLE_SQL = sqlTextList(DELIVERABLE_COMMAND_STATES);
export const TERMINAL_SQL = sqlTextList(TERMINAL_COMMAND_STATES);

export const COMMAND_COLUMNS = `c.id, c.node_id, c.capability, c.command, c.input, c.state,
  c.caller_participant_id, c.session_id, c.idempotency_key, c.fingerprint, c.timeout_ms,
  c.created_at, c.expires_at, c.delivered_at, c.started_at, c.finished_at, c.attempts, c.output,
  c.error, c.decided_by, c.revision`;

const Json = z.json();

export const CommandRow = z.object({
  id: z.string(),
  node_id: z.string(),
  capability: z.string(),
  command: z.string().nullable(),
  input: Json,
  state: CommandState,
  caller_participant_id: z.string(),
  session_id: z.string().nullable(),
  idempotency_key: z.string(),
  fingerprint: z.string(),
  timeout_ms: z.number().int(),
  created_at: z.date(),
  expires_at: z.date(),
  delivered_at: z.date().nullable(),
  started_at: z.date().nullable(),
  finished_at: z.date().nullable(),
  attempts: z.number().int(),
  output: Json.nullable(),
  error: z
    .object({ code: z.string().nullable(), message: z.string(), details: Json.optional() })
    .nullable(),
  decided_by: z.string().nullable(),
  revision: z.number().int(),
});
export type CommandRow = z.infer<typeof CommandRow>;

export function parseCommandRow(raw: unknown): CommandRow {
  return parseRow(CommandRow, raw, 'command');
}

export function toCommandView(r: CommandRow): CommandView {
  return {
    commandId: r.id,
    nodeId: r.node_id,
    capability: r.capability,
    command: r.command,
    input: r.input,
    state: r.state,
    callerParticipantId: r.caller_participant_id,
    sessionId: r.session_id,
    idempotencyKey: r.idempotency_key,
    timeoutMs: r.timeout_ms,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    deliveredAt: r.delivered_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    attempts: r.attempts,
    output: r.output,
    error: r.error,
    decidedBy: r.decided_by,
  } as CommandView;
}

export function toDelivery(r: CommandRow): CommandDelivery {
  return {
    commandId: r.id,
    capability: r.capability,
    command: r.command,
    input: r.input,
    deadline: r.expires_at,
    attempt: Math.max(r.attempts, 1),
  } as CommandDelivery;
}

/**
 * `command.state_changed` payloads for rows of `source` (columns `id`, `capability`,
 * `from_state`, `to_state`), by the server (`cause`), with the row's `attempts` when delivered.
 */
export function systemTransitionEventsSql(source: string, cause: 'delivery' | 'sweep'): string {
  const payload = eventPayloadSql('command.state_changed', {
    commandId: `${source}.id`,
    capability: `${source}.capability`,
    from: `${source}.from_state`,
    to: `${source}.to_state`,
    by: `jsonb_build_object('kind', 'system', 'cause', '${cause}')`,
    attempt: `CASE WHEN ${source}.to_state = 'delivered' THEN ${source}.attempts END`,
    reason: 'NULL::text',
  });
  return `INSERT INTO fleet_events (type, node_id, session_id, payload)
  SELECT 'command.state_changed', ${source}.node_id, ${source}.session_id, jsonb_strip_nulls(${payload})
    FROM ${source} WHERE ${source}.from_state <> ${source}.to_state`;
}

/** JSON with object keys sorted, so equal values serialise equally (fingerprints, result repeats). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The `command.state_changed` event of one transition of `row` (made in the caller's transaction). */
export async function appendStateChanged(
  sql: Sql,
  row: CommandRow,
  to: CommandState,
  by: CommandActor,
  reason: string | undefined,
): Promise<void> {
  await appendEvent(
    sql,
    fleetEvent('command.state_changed', {
      commandId: row.id as never,
      capability: row.capability,
      from: row.state,
      to,
      by,
      ...(reason === undefined ? {} : { reason }),
    }),
    { nodeId: row.node_id, sessionId: row.session_id },
  );
}
