/**
 * Pairing (device first: the device asks, an operator approves). A daemon asks to join and shows a short code; an operator
 * approves or rejects it; the daemon claims its node token with the secret only it knows.
 * Invariants:
 *  - only the SHA-256 of a claim secret is stored, and a claim finds its row by (id, hash), so a
 *    wrong secret and an unknown request are indistinguishable (`pairing.not_found`);
 *  - one claim secret is one request: re-sending it while pending refreshes that row;
 *  - a pending code is unique (partial unique index); a colliding code is drawn again;
 *  - approval creates the node (+ `offline` presence) in the decision's transaction, with no
 *    token until the claim; the claim sets the token and hands it out exactly once (row lock);
 *    claimed requests answer `claimed` forever after, never a token;
 *  - expiry: a row stays 'pending' in storage until something writes to it after `expires_at`.
 *    Mutations (request re-send, approve, reject, claim) then mark it 'expired' durably, with a
 *    `pairing.expired` event. Reads (`listRequests`) never write: they compute the effective
 *    state (see EFFECTIVE_STATE_SQL), so a stale 'pending' row is always reported as 'expired'.
 *  - every change and its fleet event commit together; times come from the database clock.
 */
import {
  PAGE_LIMIT_MAX,
  PairingState,
  TetherError,
  fleetEvent,
  type NodeId,
  type ParticipantId,
  type PairingRequestInput,
  type PairingView,
  type TypedFleetEvent,
} from '@tether/contracts';
import { z } from 'zod';
import type { ParticipantPrincipal } from '../auth/principal.js';
import { isAdmin } from '../auth/principal.js';
import { generatePairingCode, generateSecret, generateToken, hashToken } from '../auth/tokens.js';
import type { Db, Sql } from '../db/pool.js';
import { parseRow } from '../db/rows.js';
import {
  ADMINS_NAME_NODE_IDS,
  assertMayNameNodeId,
  insertNode,
  type NodeIdPolicy,
} from '../nodes/service.js';
import { appendEvent } from '../events/append.js';

/** A fresh code collides with a pending one about once in 2^40 / pending draws; 8 is plenty. */
const CODE_ATTEMPTS = 8;

/** The state a reader should see: a 'pending' row past its expiry is expired. */
const EFFECTIVE_STATE_SQL = `CASE WHEN r.state = 'pending' AND r.expires_at <= now() THEN 'expired'
                                  ELSE r.state END`;

const VIEW_COLUMNS = `r.id, r.pairing_code, ${EFFECTIVE_STATE_SQL} AS state, r.name, r.node_type,
  r.platform, r.requested_node_id, r.metadata, r.created_at, r.updated_at, r.expires_at,
  r.decided_by, r.decided_at, r.node_id`;

const ViewRow = z.object({
  id: z.string(),
  pairing_code: z.string(),
  state: PairingState,
  name: z.string(),
  node_type: z.string(),
  platform: z.string().nullable(),
  requested_node_id: z.string().nullable(),
  metadata: z.record(z.string(), z.json()),
  created_at: z.date(),
  updated_at: z.date(),
  expires_at: z.date(),
  decided_by: z.string().nullable(),
  decided_at: z.date().nullable(),
  node_id: z.string().nullable(),
});

function toView(row: unknown): PairingView {
  const r = parseRow(ViewRow, row, 'pairing request');
  return {
    requestId: r.id,
    pairingCode: r.pairing_code,
    state: r.state,
    name: r.name,
    nodeType: r.node_type,
    platform: r.platform,
    requestedNodeId: r.requested_node_id,
    metadata: r.metadata,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    expiresAt: r.expires_at,
    decidedBy: r.decided_by as ParticipantId | null,
    decidedAt: r.decided_at,
    nodeId: r.node_id as NodeId | null,
  };
}

/** A request row locked for a state change; `expired` is computed by the database clock. */
const LockedRow = z.object({
  id: z.string(),
  state: PairingState,
  expired: z.boolean(),
  name: z.string(),
  node_type: z.string(),
  platform: z.string().nullable(),
  requested_node_id: z.string().nullable(),
  metadata: z.record(z.string(), z.json()),
  node_id: z.string().nullable(),
});
type LockedRow = z.infer<typeof LockedRow>;

const LOCKED_COLUMNS = `id, state, (expires_at <= now()) AS expired, name, node_type, platform,
  requested_node_id, metadata, node_id`;

/** Marks a stale pending row expired, with its event, in the caller's transaction. */
async function markExpired(sql: Sql, row: LockedRow): Promise<void> {
  await sql.query(
    `UPDATE pairing_requests SET state = 'expired', updated_at = now() WHERE id = $1 AND state = 'pending'`,
    [row.id],
  );
  await appendEvent(
    sql,
    fleetEvent('pairing.expired', {
      requestId: row.id,
      requestedNodeId: row.requested_node_id as NodeId | null,
    }),
  );
}

function notPending(state: PairingState): TetherError {
  return new TetherError('pairing.not_pending', `The pairing request is ${state}, not pending.`, {
    state,
  });
}

export interface PairingRequestContext {
  /** The real peer address of the requester (ctx.peer). */
  requesterAddress: string;
  /** How long a request stays pending (settings.pairingTtlSeconds). */
  ttlSeconds: number;
}

export interface PairingRequested {
  requestId: string;
  pairingCode: string;
  claimSecret: string;
  expiresAt: Date;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: TetherError };

/**
 * `pairing.request`: public. A re-send with the same claim secret while its request is pending
 * updates that row (same id and code, fresh expiry); a re-send after it left 'pending' (decided,
 * claimed or expired) is `pairing.not_pending` — the daemon starts over with a new secret.
 */
export async function requestPairing(
  db: Db,
  input: PairingRequestInput,
  context: PairingRequestContext,
): Promise<PairingRequested> {
  const claimSecret = input.claimSecret ?? generateSecret();
  const claimHash = hashToken(claimSecret);
  const fields = [
    input.name,
    input.nodeType,
    input.platform ?? null,
    input.nodeId ?? null,
    JSON.stringify(input.metadata ?? {}),
    context.requesterAddress,
    context.ttlSeconds,
  ];
  const outcome = await db.tx(async (sql): Promise<Outcome<PairingRequested>> => {
    for (let attempt = 0; attempt < CODE_ATTEMPTS; attempt++) {
      const { rows: existing } = await sql.query(
        `SELECT ${LOCKED_COLUMNS} FROM pairing_requests WHERE claim_secret_hash = $1 FOR UPDATE`,
        [claimHash],
      );
      if (existing[0]) {
        const row = parseRow(LockedRow, existing[0], 'pairing request');
        if (row.state === 'pending' && row.expired) {
          // Committed before answering, so the expiry is durable (and its event written).
          await markExpired(sql, row);
          return { ok: false, error: notPending('expired') };
        }
        if (row.state !== 'pending') return { ok: false, error: notPending(row.state) };
        const { rows } = await sql.query<{ id: string; pairing_code: string; expires_at: Date }>(
          `UPDATE pairing_requests
              SET name = $2, node_type = $3, platform = $4, requested_node_id = $5, metadata = $6,
                  requester_address = $7, expires_at = now() + make_interval(secs => $8::int),
                  updated_at = now()
            WHERE id = $1
            RETURNING id, pairing_code, expires_at`,
          [row.id, ...fields],
        );
        const updated = rows[0]!;
        await appendEvent(sql, requestedEvent(updated.id, updated.pairing_code, input, true));
        return { ok: true, value: view(updated, claimSecret) };
      }
      // No target on ON CONFLICT: a colliding pending code or a concurrent first request with
      // the same claim secret both insert nothing (the transaction stays usable, unlike a caught
      // 23505). The next round re-reads by secret: a concurrent twin is now visible and updated;
      // otherwise it was the code, and a new one is drawn.
      const { rows } = await sql.query<{ id: string; pairing_code: string; expires_at: Date }>(
        `INSERT INTO pairing_requests (pairing_code, claim_secret_hash, name, node_type, platform,
                                       requested_node_id, metadata, requester_address, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9::int))
         ON CONFLICT DO NOTHING
         RETURNING id, pairing_code, expires_at`,
        [generatePairingCode(), claimHash, ...fields],
      );
      const created = rows[0];
      if (created) {
        await appendEvent(sql, requestedEvent(created.id, created.pairing_code, input, false));
        return { ok: true, value: view(created, claimSecret) };
      }
    }
    throw new TetherError('system.unavailable', 'Could not allocate a pairing code; retry.');
  });
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

function view(
  row: { id: string; pairing_code: string; expires_at: Date },
  claimSecret: string,
): PairingRequested {
  return {
    requestId: row.id,
    pairingCode: row.pairing_code,
    claimSecret,
    expiresAt: row.expires_at,
  };
}

function requestedEvent(
  requestId: string,
  pairingCode: string,
  input: PairingRequestInput,
  refreshed: boolean,
): TypedFleetEvent<'pairing.requested'> {
  return fleetEvent('pairing.requested', {
    requestId,
    pairingCode,
    name: input.name,
    nodeType: input.nodeType,
    requestedNodeId: input.nodeId ?? null,
    refreshed,
  });
}

/**
 * `pairing.list`: newest first. Members see requests that are (effectively) pending and those
 * they decided; admins see all. The `state` filter applies to the effective state. The wire
 * contract has no pagination, so the answer is bounded at PAGE_LIMIT_MAX newest requests.
 */
export async function listRequests(
  db: Db,
  actor: ParticipantPrincipal,
  input: { state?: PairingState | undefined },
): Promise<{ items: PairingView[] }> {
  const { rows } = await db.query(
    `SELECT ${VIEW_COLUMNS}
       FROM pairing_requests r
      WHERE ($1::boolean OR ${EFFECTIVE_STATE_SQL} = 'pending' OR r.decided_by = $2)
        AND ($3::text IS NULL OR ${EFFECTIVE_STATE_SQL} = $3::text)
      ORDER BY r.created_at DESC, r.id DESC
      LIMIT $4`,
    [isAdmin(actor), actor.participantId, input.state ?? null, PAGE_LIMIT_MAX],
  );
  return { items: rows.map(toView) };
}

/**
 * Locks a request that is about to be decided. Unknown → not_found; expired (marked or not) →
 * pairing.expired (a stale row is marked in this transaction, which then commits); any other
 * non-pending state → not_pending.
 */
async function lockForDecision(sql: Sql, requestId: string): Promise<Outcome<LockedRow>> {
  const { rows } = await sql.query(
    `SELECT ${LOCKED_COLUMNS} FROM pairing_requests WHERE id = $1 FOR UPDATE`,
    [requestId],
  );
  if (!rows[0]) throw new TetherError('pairing.not_found', 'No such pairing request.');
  const row = parseRow(LockedRow, rows[0], 'pairing request');
  const expired = new TetherError(
    'pairing.expired',
    'The pairing request expired before it was decided.',
  );
  if (row.state === 'pending' && row.expired) {
    await markExpired(sql, row);
    return { ok: false, error: expired };
  }
  if (row.state === 'expired') return { ok: false, error: expired };
  if (row.state !== 'pending') return { ok: false, error: notPending(row.state) };
  return { ok: true, value: row };
}

/** `k7qf 2m9d` → `K7QF-2M9D`: the stored form of a code a person typed. */
export function normalizePairingCode(code: string): string {
  const bare = code.replace(/[^A-Za-z0-9]/g, '').toUpperCase();
  return `${bare.slice(0, 4)}-${bare.slice(4)}`;
}

/** Which request a decision names: its id, or the code its device shows (exactly one). */
export interface PairingTarget {
  requestId?: string | undefined;
  pairingCode?: string | undefined;
}

/**
 * The request id a decision means. By code: the (stored) pending request with that code — the
 * partial unique index makes it at most one; a stale one is then reported expired by
 * lockForDecision. With no pending request, a code used by exactly one past request names it
 * (so the answer is its state: not_pending / expired); used by several → pairing.code_ambiguous;
 * never used → pairing.not_found.
 */
async function resolveTarget(sql: Sql, target: PairingTarget): Promise<string> {
  if (target.requestId !== undefined && target.pairingCode === undefined) return target.requestId;
  if (target.pairingCode === undefined || target.requestId !== undefined) {
    throw new TetherError('request.invalid', 'Give exactly one of requestId or pairingCode.');
  }
  const code = normalizePairingCode(target.pairingCode);
  const { rows } = await sql.query<{ id: string; pending: boolean }>(
    `SELECT id, state = 'pending' AS pending FROM pairing_requests
      WHERE pairing_code = $1
      ORDER BY (state = 'pending') DESC, created_at DESC
      LIMIT 2`,
    [code],
  );
  const first = rows[0];
  if (!first) {
    throw new TetherError('pairing.not_found', `No pairing request has the code ${code}.`);
  }
  if (first.pending || rows.length === 1) return first.id;
  throw new TetherError(
    'pairing.code_ambiguous',
    `No pending pairing request has the code ${code}, and several past ones did; decide by requestId.`,
    { pairingCode: code },
  );
}

export interface PairingDecision {
  requestId: string;
  state: 'approved' | 'rejected';
}

/**
 * `pairing.approve`: any participant. Creates the node, owned by the approver, through the
 * registration code path (node + `offline` presence) in this transaction, with no token until
 * the claim. A request that names a node id can be approved only by an admin (or by anyone under
 * a policy that lets members name ids): otherwise node.id_not_allowed, whether or not the id is
 * taken, so an approver never learns of nodes they cannot see. A named id that is taken →
 * node.id_taken. Either way the request stays pending. The request is named by its id or by the
 * code its device shows (resolveTarget).
 */
export async function approveRequest(
  db: Db,
  actor: ParticipantPrincipal,
  input: PairingTarget,
  policy: NodeIdPolicy = ADMINS_NAME_NODE_IDS,
): Promise<PairingDecision> {
  const outcome = await db.tx(async (sql): Promise<Outcome<PairingDecision>> => {
    const locked = await lockForDecision(sql, await resolveTarget(sql, input));
    if (!locked.ok) return locked;
    const row = locked.value;
    assertMayNameNodeId(actor.role, row.requested_node_id, policy);
    const node = await insertNode(sql, {
      nodeId: row.requested_node_id ?? undefined,
      ownerParticipantId: actor.participantId,
      name: row.name,
      nodeType: row.node_type,
      platform: row.platform ?? undefined,
      metadata: row.metadata,
      tokenHash: null,
    });
    await sql.query(
      `UPDATE pairing_requests
          SET state = 'approved', decided_by = $2, decided_at = now(), node_id = $3, updated_at = now()
        WHERE id = $1`,
      [row.id, actor.participantId, node.nodeId],
    );
    await appendEvent(
      sql,
      fleetEvent('pairing.approved', { requestId: row.id, decidedBy: actor.participantId }),
      { nodeId: node.nodeId },
    );
    // The node identity exists from now on (listed offline), so the feed learns of it here,
    // exactly once, as it does for key enrollment.
    await appendEvent(
      sql,
      fleetEvent('node.enrolled', {
        via: 'pairing',
        requestId: row.id,
        ownerParticipantId: node.ownerParticipantId,
        name: row.name,
        nodeType: row.node_type,
      }),
      { nodeId: node.nodeId },
    );
    return { ok: true, value: { requestId: row.id, state: 'approved' } };
  });
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/** `pairing.reject`: any participant; same preconditions (and target) as approval. */
export async function rejectRequest(
  db: Db,
  actor: ParticipantPrincipal,
  input: PairingTarget,
): Promise<PairingDecision> {
  const outcome = await db.tx(async (sql): Promise<Outcome<PairingDecision>> => {
    const locked = await lockForDecision(sql, await resolveTarget(sql, input));
    if (!locked.ok) return locked;
    const row = locked.value;
    await sql.query(
      `UPDATE pairing_requests
          SET state = 'rejected', decided_by = $2, decided_at = now(), updated_at = now()
        WHERE id = $1`,
      [row.id, actor.participantId],
    );
    await appendEvent(
      sql,
      fleetEvent('pairing.rejected', { requestId: row.id, decidedBy: actor.participantId }),
    );
    return { ok: true, value: { requestId: row.id, state: 'rejected' } };
  });
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

export interface PairingClaimed {
  state: PairingState;
  nodeId?: NodeId;
  nodeToken?: string;
  ownerParticipantId?: ParticipantId;
}

/**
 * `pairing.claim`: public. The row is found by (id, secret hash) and locked, so of concurrent
 * claims of an approved request exactly one sets the node token and sees it; the others (and
 * every later claim) see 'claimed' with no token.
 */
export async function claimRequest(
  db: Db,
  input: { requestId: string; claimSecret: string },
): Promise<PairingClaimed> {
  return db.tx(async (sql) => {
    const { rows } = await sql.query(
      `SELECT ${LOCKED_COLUMNS} FROM pairing_requests
        WHERE id = $1 AND claim_secret_hash = $2
          FOR UPDATE`,
      [input.requestId, hashToken(input.claimSecret)],
    );
    if (!rows[0]) throw new TetherError('pairing.not_found', 'No such pairing request.');
    const row = parseRow(LockedRow, rows[0], 'pairing request');
    if (row.state === 'pending' && row.expired) {
      await markExpired(sql, row);
      return { state: 'expired' };
    }
    if (row.state !== 'approved') return { state: row.state };
    if (row.node_id === null) {
      throw new TetherError('system.internal', 'An approved pairing request has no node.');
    }
    const nodeToken = generateToken('tnd_');
    // `token_hash IS NULL`: a claim only ever fills the empty credential approval left; it never
    // replaces a live one.
    const { rows: nodes } = await sql.query<{ node_id: string; owner_participant_id: string }>(
      `UPDATE nodes SET token_hash = $2, updated_at = now()
        WHERE node_id = $1 AND token_hash IS NULL
       RETURNING node_id, owner_participant_id`,
      [row.node_id, hashToken(nodeToken)],
    );
    const node = nodes[0];
    if (!node) {
      throw new TetherError('system.internal', 'The approved node is gone or already has a token.');
    }
    await sql.query(
      `UPDATE pairing_requests SET state = 'claimed', claimed_at = now(), updated_at = now()
        WHERE id = $1`,
      [row.id],
    );
    // There is no `pairing.claimed` event type; the change the fleet can observe is the node
    // getting its credential, recorded like a token rotation.
    await appendEvent(
      sql,
      fleetEvent('node.updated', {
        changed: ['token'],
        by: { kind: 'node', nodeId: node.node_id as NodeId },
        via: 'pairing.claim',
        requestId: row.id,
      }),
      { nodeId: node.node_id },
    );
    return {
      state: 'approved',
      nodeId: node.node_id as NodeId,
      nodeToken,
      ownerParticipantId: node.owner_participant_id as ParticipantId,
    };
  });
}
