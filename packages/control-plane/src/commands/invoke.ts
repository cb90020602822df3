/**
 * `command.invoke`: the target chosen (a named node, or the least recently commanded eligible node
 * with the capability), the access policy's decision, the input checked, then the command row and
 * its `command.invoked` event committed in one transaction before the node is woken.
 * Invariants:
 *  - one idempotency key per caller names one command (unique index); a retry answers from the
 *    row it created, the same key with a different request is `command.idempotency_conflict`;
 *  - who may invoke is the access policy's decision (`access-policy/decide.ts`), made inside the
 *    invoking transaction; a refusal on a named node is audited as `command.refused`;
 *  - a node below its session's floor (read-only) or at its open-command cap takes no command.
 */
import { createHash } from 'node:crypto';
import {
  CapabilityDescriptor,
  COMMAND_OPEN_PER_NODE_MAX,
  COMMAND_TIMEOUT_DEFAULT_MS,
  TetherError,
  fleetEvent,
  type CommandInvokeInput,
  type CommandInvokeOutput,
  type CommandState,
} from '@tether/contracts';
import { decideInvocation, type InvocationDecision } from '../access-policy/decide.js';
import type { ParticipantPrincipal } from '../auth/principal.js';
import { isAdmin } from '../auth/principal.js';
import { visibleNode, visibleNodeIdsSql } from '../auth/visibility.js';
import type { Db, Sql } from '../db/pool.js';
import { appendEvent } from '../events/append.js';
import { isReadOnly } from '../sessions/floor.js';
import {
  canonicalJson,
  COMMAND_COLUMNS,
  OPEN_SQL,
  parseCommandRow,
  type CommandRow,
} from './rows.js';
import type { CommandSignals } from './signals.js';
import { checkInvocation } from './validation.js';

/** Nodes considered per invocation by capability (least recently commanded first). */
const CANDIDATES_MAX = 64;

function fingerprintOf(input: CommandInvokeInput, body: unknown, timeoutMs: number): string {
  return createHash('sha256')
    .update(
      canonicalJson({
        target: input.target,
        capability: input.capability,
        command: input.command ?? null,
        input: body,
        timeoutMs,
      }),
    )
    .digest('hex');
}

const EXISTING = `SELECT ${COMMAND_COLUMNS} FROM node_commands c
  WHERE c.caller_participant_id = $1 AND c.idempotency_key = $2`;

function replay(row: CommandRow, fingerprint: string): CommandInvokeOutput {
  if (row.fingerprint !== fingerprint) {
    throw new TetherError(
      'command.idempotency_conflict',
      'This idempotency key was already used for a different invocation.',
      { commandId: row.id },
    );
  }
  return {
    commandId: row.id,
    state: row.state,
    nodeId: row.node_id,
    expiresAt: row.expires_at,
    deduplicated: true,
  } as CommandInvokeOutput;
}

interface TargetRow {
  node_id: string;
  status: string;
  descriptor: unknown;
  declared: boolean;
  visible: boolean;
  node_version: string | null;
  session_id: string | null;
  min_node_version: string | null;
  open_count: number;
}

/** A node's facts for an invocation (`n` locked when `lock`), with its active attachment. */
function targetSql(where: string, lock: string): string {
  return `SELECT n.node_id, n.status, n.capabilities -> $1::text AS descriptor, n.capabilities ? $1::text AS declared,
                 $2::boolean OR ${visibleNode('$3::uuid')} AS visible,
                 a.node_version, a.session_id, s.min_node_version,
                 (SELECT count(*)::int FROM node_commands oc
                   WHERE oc.node_id = n.node_id AND oc.state IN ${OPEN_SQL}) AS open_count
            FROM nodes n
            LEFT JOIN runtime_node_attachments a
                   ON a.node_id = n.node_id AND a.state IN ('registering', 'online', 'degraded')
            LEFT JOIN sessions s ON s.id = a.session_id
           WHERE ${where} ${lock}`;
}

function readOnly(row: TargetRow): boolean {
  if (row.node_version === null) return false;
  try {
    return isReadOnly(row.node_version, row.min_node_version);
  } catch {
    // A malformed floor admits nothing (sessions/floor.ts): the node takes no commands.
    return true;
  }
}

type Chosen = { row: TargetRow; decision: Exclude<InvocationDecision, { outcome: 'deny' }> };

type Resolution =
  | { kind: 'chosen'; chosen: Chosen }
  | {
      kind: 'refused';
      error: TetherError;
      nodeId: string;
      decision: InvocationDecision & { outcome: 'deny' };
    };

function permissionDenied(decision: InvocationDecision & { outcome: 'deny' }): TetherError {
  return new TetherError(
    'command.permission_denied',
    `The access policy (${decision.policy}) does not let you invoke this capability (${decision.reason}).`,
    { policy: decision.policy, reason: decision.reason },
  );
}

async function resolveNode(
  sql: Sql,
  actor: ParticipantPrincipal,
  nodeId: string,
  capability: string,
): Promise<Resolution> {
  const { rows } = await sql.query<TargetRow>(
    targetSql(`n.node_id = $4`, 'FOR NO KEY UPDATE OF n'),
    [capability, isAdmin(actor), actor.participantId, nodeId],
  );
  const row = rows[0];
  if (!row?.visible) throw new TetherError('node.not_found', 'No such node visible to the caller.');
  if (row.status !== 'active') {
    throw new TetherError('command.node_unavailable', 'The node is revoked.', {
      reason: 'revoked',
    });
  }
  if (!row.declared) {
    throw new TetherError(
      'command.capability_unknown',
      `Node ${nodeId} does not declare capability ${capability}.`,
      { nodeId, capability },
    );
  }
  if (readOnly(row)) {
    throw new TetherError(
      'command.node_unavailable',
      "The node is attached read-only (its node version is below its session's floor).",
      { reason: 'read_only' },
    );
  }
  const decision = await decideInvocation(sql, { principal: actor, nodeId, capability });
  if (decision.outcome === 'deny') {
    return { kind: 'refused', error: permissionDenied(decision), nodeId, decision };
  }
  if (row.open_count >= COMMAND_OPEN_PER_NODE_MAX) {
    throw new TetherError('command.node_busy', 'The node holds its maximum of open commands.', {
      limit: COMMAND_OPEN_PER_NODE_MAX,
    });
  }
  return { kind: 'chosen', chosen: { row, decision } };
}

/**
 * The least recently commanded eligible node: active, online or degraded, declares the
 * capability (in `sessionId`'s attachment when given), visible to the caller, writable, allowed
 * by the policy, below the open-command cap. A candidate another invocation holds right now is
 * passed over for the next one (so concurrent invocations spread), and taken after all if no
 * other is free.
 */
async function chooseNode(
  sql: Sql,
  actor: ParticipantPrincipal,
  capability: string,
  sessionId: string | undefined,
): Promise<Chosen> {
  const where = [
    `n.status = 'active'`,
    `n.capabilities ? $1::text`,
    `EXISTS (SELECT 1 FROM runtime_node_presence p
              WHERE p.node_id = n.node_id AND p.health_state IN ('online', 'degraded'))`,
  ];
  const params: unknown[] = [capability, isAdmin(actor), actor.participantId];
  if (!isAdmin(actor)) where.push(`n.node_id IN (${visibleNodeIdsSql('$3::uuid')})`);
  if (sessionId !== undefined) {
    params.push(sessionId);
    where.push(`a.session_id = $${params.length}::uuid`, `a.capabilities ? $1::text`);
  }
  params.push(CANDIDATES_MAX);
  const { rows } = await sql.query<TargetRow>(
    `${targetSql(where.join(' AND '), '')}
     ORDER BY n.last_commanded_at ASC NULLS FIRST, n.node_id
     LIMIT $${params.length}`,
    params,
  );
  let denied = 0;
  let busy = 0;
  const held: Chosen[] = [];
  for (const row of rows) {
    if (readOnly(row)) continue;
    const decision = await decideInvocation(sql, {
      principal: actor,
      nodeId: row.node_id,
      capability,
    });
    if (decision.outcome === 'deny') {
      denied++;
      continue;
    }
    if (row.open_count >= COMMAND_OPEN_PER_NODE_MAX) {
      busy++;
      continue;
    }
    const { rows: locked } = await sql.query(
      `SELECT 1 FROM nodes WHERE node_id = $1 AND status = 'active' FOR NO KEY UPDATE SKIP LOCKED`,
      [row.node_id],
    );
    if (locked.length === 1) return { row, decision };
    held.push({ row, decision });
  }
  for (const candidate of held) {
    const { rows: locked } = await sql.query(
      `SELECT 1 FROM nodes WHERE node_id = $1 AND status = 'active' FOR NO KEY UPDATE`,
      [candidate.row.node_id],
    );
    if (locked.length === 1) return candidate;
  }
  const reason = busy > 0 ? 'all_busy' : denied > 0 ? 'not_allowed' : 'none_online';
  throw new TetherError(
    'command.no_eligible_node',
    reason === 'all_busy'
      ? `Every node that could take ${capability} holds its maximum of open commands.`
      : reason === 'not_allowed'
        ? `The access policy refuses you on every online node with ${capability}.`
        : `No online, writable node declares ${capability}.`,
    { reason, capability },
  );
}

export async function invoke(
  db: Db,
  signals: CommandSignals,
  actor: ParticipantPrincipal,
  input: CommandInvokeInput,
): Promise<CommandInvokeOutput> {
  const body = input.input ?? {};
  const timeoutMs = input.timeoutMs ?? COMMAND_TIMEOUT_DEFAULT_MS;
  const fingerprint = fingerprintOf(input, body, timeoutMs);
  // A retry answers from the row it created, without deciding again.
  const prior = await db.query(EXISTING, [actor.participantId, input.idempotencyKey]);
  if (prior.rows[0]) return replay(parseCommandRow(prior.rows[0]), fingerprint);

  const outcome = await db.tx(async (sql) => {
    const resolution =
      'nodeId' in input.target
        ? await resolveNode(sql, actor, input.target.nodeId, input.capability)
        : {
            kind: 'chosen' as const,
            chosen: await chooseNode(sql, actor, input.capability, input.target.sessionId),
          };
    if (resolution.kind === 'refused') {
      // Audited, committed, then refused.
      await appendEvent(
        sql,
        fleetEvent('command.refused', {
          capability: input.capability,
          command: input.command ?? null,
          by: actor.participantId,
          policy: resolution.decision.policy,
          reason: resolution.decision.reason,
        }),
        { nodeId: resolution.nodeId },
      );
      return resolution;
    }
    const { row, decision } = resolution.chosen;
    checkInvocation(
      input.capability,
      CapabilityDescriptor.parse(row.descriptor),
      input.command,
      body,
    );
    const state: CommandState = decision.outcome === 'gate' ? 'awaiting_approval' : 'pending';
    const sessionId =
      'sessionId' in input.target && input.target.sessionId !== undefined
        ? input.target.sessionId
        : row.session_id;
    const { rows: inserted } = await sql.query(
      `INSERT INTO node_commands AS c
              (node_id, capability, command, input, state, caller_participant_id, session_id,
               idempotency_key, fingerprint, targeted_by, timeout_ms, expires_at)
       VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11::integer,
               now() + make_interval(secs => $12::float8 / 1000))
       ON CONFLICT ON CONSTRAINT node_commands_caller_key DO NOTHING
       RETURNING ${COMMAND_COLUMNS}`,
      [
        row.node_id,
        input.capability,
        input.command ?? null,
        JSON.stringify(body),
        state,
        actor.participantId,
        sessionId,
        input.idempotencyKey,
        fingerprint,
        'nodeId' in input.target ? 'node' : 'capability',
        timeoutMs,
        timeoutMs,
      ],
    );
    if (!inserted[0]) {
      // A concurrent call with the same key committed first: answer with its command.
      const { rows } = await sql.query(EXISTING, [actor.participantId, input.idempotencyKey]);
      return { kind: 'replay' as const, row: parseCommandRow(rows[0]) };
    }
    const command = parseCommandRow(inserted[0]);
    await sql.query(`UPDATE nodes SET last_commanded_at = now() WHERE node_id = $1`, [
      command.node_id,
    ]);
    await appendEvent(
      sql,
      fleetEvent('command.invoked', {
        commandId: command.id as never,
        capability: command.capability,
        command: command.command,
        state: command.state,
        by: actor.participantId,
        decision:
          decision.outcome === 'gate'
            ? { outcome: 'gate', policy: 'gated' }
            : { outcome: 'allow', policy: decision.policy, via: decision.via },
        targetedBy: 'nodeId' in input.target ? 'node' : 'capability',
        expiresAt: command.expires_at.toISOString(),
      }),
      { nodeId: command.node_id, sessionId: command.session_id },
    );
    return { kind: 'created' as const, row: command };
  });
  if (outcome.kind === 'refused') throw outcome.error;
  if (outcome.kind === 'replay') return replay(outcome.row, fingerprint);
  signals.wakeNode(outcome.row.node_id);
  return {
    commandId: outcome.row.id,
    state: outcome.row.state,
    nodeId: outcome.row.node_id,
    expiresAt: outcome.row.expires_at,
    deduplicated: false,
  } as CommandInvokeOutput;
}
