/**
 * Enrollment keys (operator first: the operator makes a key, the device uses it). A participant mints a key (`tek_` + 256 random
 * bits, stored only as its SHA-256); a device presents it to `device.enroll` and receives a node
 * identity owned by the key's creator — or, for a fleet, many at once (`device.enrollBatch`, one
 * reusable key, all or none). Invariants:
 *  - the key is locked (FOR UPDATE) for the whole enrollment, so a single-use key yields exactly
 *    one node however many enrolls race for it;
 *  - key use, node row, `offline` presence row and the `node.enrolled` event commit together or
 *    not at all (a taken or refused node id rolls everything back: the key is not consumed);
 *  - a named node id is refused for keys of non-admins, before the id is looked at, so an id
 *    taken by a node the key's owner cannot see is never confirmed (nodes/service.ts);
 *  - the node token is returned once and stored only as SHA-256;
 *  - times come from the database clock;
 *  - a key never outlives the token that created it: expiry capped at the token's, revoked with
 *    it (auth/participant-tokens.ts `revokeTokenTree`).
 */
import {
  ENROLLMENT_KEY_DEFAULT_TTL_SECONDS,
  PAGE_LIMIT_MAX,
  TetherError,
  fleetEvent,
  type DeviceEnrollBatchInput,
  type DeviceEnrollBatchNode,
  type DeviceEnrollInput,
  type EnrollmentKeyView,
  type NodeId,
  type ParticipantId,
} from '@tether/contracts';
import { z } from 'zod';
import type { ParticipantPrincipal } from '../auth/principal.js';
import { isAdmin } from '../auth/principal.js';
import { generateToken, hashToken } from '../auth/tokens.js';
import type { Db, Sql } from '../db/pool.js';
import { parseRow } from '../db/rows.js';
import { appendEvent } from '../events/append.js';
import {
  ADMINS_NAME_NODE_IDS,
  assertMayNameNodeId,
  insertNode,
  type NodeIdPolicy,
} from '../nodes/service.js';

/**
 * Derived key state (`k` = enrollment_keys, `p` = its creator). Precedence: revocation first,
 * then a used single-use key (spent), then expiry. A disabled creator's keys count as revoked:
 * the node would be owned by someone whose credentials no longer authenticate. `enroll` derives
 * the state with this same expression, so the error a device gets always matches the state an
 * operator sees in `listKeys`.
 */
const KEY_STATE_SQL = `CASE WHEN k.revoked_at IS NOT NULL OR p.disabled_at IS NOT NULL THEN 'revoked'
                            WHEN NOT k.reusable AND k.use_count > 0 THEN 'spent'
                            WHEN k.expires_at <= now() THEN 'expired'
                            ELSE 'active' END`;

const KeyRow = z.object({
  id: z.string(),
  reusable: z.boolean(),
  labels: z.record(z.string(), z.string()),
  created_at: z.date(),
  expires_at: z.date(),
  revoked_at: z.date().nullable(),
  use_count: z.number().int().nonnegative(),
  last_used_at: z.date().nullable(),
  state: z.enum(['active', 'spent', 'expired', 'revoked']),
});

function toKeyView(row: unknown): EnrollmentKeyView {
  const r = parseRow(KeyRow, row, 'enrollment key');
  return {
    keyId: r.id,
    reusable: r.reusable,
    labels: r.labels,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    useCount: r.use_count,
    lastUsedAt: r.last_used_at,
    state: r.state,
  };
}

export interface CreateKeyInput {
  reusable?: boolean | undefined;
  expiresInSeconds?: number | undefined;
  labels?: Record<string, string> | undefined;
}

export interface CreatedKey {
  keyId: string;
  enrollmentKey: string;
  expiresAt: Date;
}

export async function createKey(
  db: Db,
  actor: ParticipantPrincipal,
  input: CreateKeyInput,
): Promise<CreatedKey> {
  const enrollmentKey = generateToken('tek_');
  // Like a child token (auth/participant-tokens.ts): the key records the token that made the call, expires
  // no later than it, and is revoked with it; the creator row is read FOR SHARE so a concurrent
  // revocation either refuses this insert or sees the key.
  const { rows } = await db.query<{ id: string; expires_at: Date }>(
    `WITH creator AS (
       SELECT t.id, t.expires_at FROM api_tokens t
        WHERE t.id = $6::uuid AND t.revoked_at IS NULL
          AND (t.expires_at IS NULL OR t.expires_at > now())
          FOR SHARE
     )
     INSERT INTO enrollment_keys (key_hash, created_by, reusable, labels, expires_at, created_by_token_id)
     SELECT $1, $2, $3, $4,
            LEAST(now() + make_interval(secs => $5::int), (SELECT expires_at FROM creator)),
            (SELECT id FROM creator)
      WHERE $6::uuid IS NULL OR EXISTS (SELECT 1 FROM creator)
     RETURNING id, expires_at`,
    [
      hashToken(enrollmentKey),
      actor.participantId,
      input.reusable ?? false,
      JSON.stringify(input.labels ?? {}),
      input.expiresInSeconds ?? ENROLLMENT_KEY_DEFAULT_TTL_SECONDS,
      actor.tokenId ?? null,
    ],
  );
  const row = rows[0];
  if (!row) {
    throw new TetherError(
      'auth.unauthenticated',
      'The credential that made this call is no longer valid.',
    );
  }
  return { keyId: row.id, enrollmentKey, expiresAt: row.expires_at };
}

/**
 * The caller's own keys (an admin's: every key), newest first. The wire contract has no
 * pagination, so the answer is bounded at PAGE_LIMIT_MAX newest keys.
 */
export async function listKeys(
  db: Db,
  actor: ParticipantPrincipal,
): Promise<{ items: EnrollmentKeyView[] }> {
  const { rows } = await db.query(
    `SELECT k.id, k.reusable, k.labels, k.created_at, k.expires_at, k.revoked_at, k.use_count,
            k.last_used_at, ${KEY_STATE_SQL} AS state
       FROM enrollment_keys k JOIN participants p ON p.id = k.created_by
      WHERE $1::boolean OR k.created_by = $2
      ORDER BY k.created_at DESC, k.id DESC
      LIMIT $3`,
    [isAdmin(actor), actor.participantId, PAGE_LIMIT_MAX],
  );
  return { items: rows.map(toKeyView) };
}

/** Revokes a key: its creator may revoke their own, an admin any. Idempotent. */
export async function revokeKey(
  db: Db,
  actor: ParticipantPrincipal,
  input: { keyId: string },
): Promise<null> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE enrollment_keys SET revoked_at = COALESCE(revoked_at, now())
      WHERE id = $1 AND ($2::boolean OR created_by = $3)
      RETURNING id`,
    [input.keyId, isAdmin(actor), actor.participantId],
  );
  if (!rows[0]) throw new TetherError('enrollment.key_not_found', 'No such enrollment key.');
  return null;
}

const LockedKeyRow = z.object({
  id: z.string(),
  created_by: z.string(),
  creator_role: z.enum(['admin', 'member']),
  labels: z.record(z.string(), z.string()),
  reusable: z.boolean(),
  state: z.enum(['active', 'spent', 'expired', 'revoked']),
});

export interface EnrolledNode {
  nodeId: NodeId;
  nodeToken: string;
  ownerParticipantId: ParticipantId;
}

type LockedKey = z.infer<typeof LockedKeyRow>;

/**
 * Locks the key for the rest of the transaction and checks that it may be used. FOR UPDATE
 * serialises every use of a key: a racing enroll waits here, then re-reads the committed
 * use_count and sees the key spent.
 */
async function lockUsableKey(sql: Sql, enrollmentKey: string): Promise<LockedKey> {
  const { rows } = await sql.query(
    `SELECT k.id, k.created_by, p.role AS creator_role, k.labels, k.reusable, ${KEY_STATE_SQL} AS state
       FROM enrollment_keys k JOIN participants p ON p.id = k.created_by
      WHERE k.key_hash = $1
        FOR UPDATE OF k`,
    [hashToken(enrollmentKey)],
  );
  if (!rows[0]) throw new TetherError('enrollment.key_invalid', 'The enrollment key is unknown.');
  const key = parseRow(LockedKeyRow, rows[0], 'enrollment key');
  switch (key.state) {
    case 'revoked':
      throw new TetherError('enrollment.key_revoked', 'The enrollment key was revoked.');
    case 'spent':
      throw new TetherError(
        'enrollment.key_spent',
        'The single-use enrollment key was already used.',
      );
    case 'expired':
      throw new TetherError('enrollment.key_expired', 'The enrollment key has expired.');
    case 'active':
      return key;
  }
}

/** One node on a locked key: node + `offline` presence + `node.enrolled`, in the caller's tx. */
async function enrollOne(
  sql: Sql,
  key: LockedKey,
  input: DeviceEnrollBatchNode,
  policy: NodeIdPolicy,
): Promise<EnrolledNode> {
  assertMayNameNodeId(key.creator_role, input.nodeId, policy);
  const nodeToken = generateToken('tnd_');
  const node = await insertNode(sql, {
    nodeId: input.nodeId,
    ownerParticipantId: key.created_by as ParticipantId,
    name: input.name,
    nodeType: input.nodeType,
    platform: input.platform,
    location: input.location,
    labels: { ...key.labels, ...input.labels },
    capabilities: input.capabilities,
    nodeVersion: input.nodeVersion,
    tokenHash: hashToken(nodeToken),
  });
  await appendEvent(
    sql,
    fleetEvent('node.enrolled', {
      via: 'enrollment_key',
      keyId: key.id,
      ownerParticipantId: node.ownerParticipantId,
      name: input.name,
      nodeType: input.nodeType,
    }),
    { nodeId: node.nodeId },
  );
  return { nodeId: node.nodeId, nodeToken, ownerParticipantId: node.ownerParticipantId };
}

async function countUses(sql: Sql, keyId: string, uses: number): Promise<void> {
  await sql.query(
    `UPDATE enrollment_keys SET use_count = use_count + $2, last_used_at = now() WHERE id = $1`,
    [keyId, uses],
  );
}

/**
 * `device.enroll`: public, gated by the key alone. The node is owned by the key's creator; the
 * key's labels are defaults under the request's (the request wins on a conflicting key). A
 * named `nodeId` needs a key created by an admin (or a policy that lets members name ids):
 * otherwise `node.id_not_allowed`, whether or not the id exists (see assertMayNameNodeId), and
 * the key is not used.
 */
export async function enroll(
  db: Db,
  input: DeviceEnrollInput,
  policy: NodeIdPolicy = ADMINS_NAME_NODE_IDS,
): Promise<EnrolledNode> {
  const { enrollmentKey, ...node } = input;
  return db.tx(async (sql) => {
    const key = await lockUsableKey(sql, enrollmentKey);
    const enrolled = await enrollOne(sql, key, node, policy);
    await countUses(sql, key.id, 1);
    return enrolled;
  });
}

/**
 * `device.enrollBatch`: public, gated by the key; up to DEVICE_ENROLL_BATCH_MAX nodes in one
 * transaction — all or none (a taken or refused node id anywhere rolls back the batch). More
 * than one node needs a reusable key (`enrollment.key_single_use`, nothing enrolled). Each node
 * is enrolled exactly as `device.enroll` would, with its own `node.enrolled` event; the key's
 * use count grows by the batch size. The public rate limit counts the call once: this is the
 * path for fleets (decision 0015).
 */
export async function enrollBatch(
  db: Db,
  input: DeviceEnrollBatchInput,
  policy: NodeIdPolicy = ADMINS_NAME_NODE_IDS,
): Promise<{ nodes: EnrolledNode[] }> {
  return db.tx(async (sql) => {
    const key = await lockUsableKey(sql, input.enrollmentKey);
    if (!key.reusable && input.nodes.length > 1) {
      throw new TetherError(
        'enrollment.key_single_use',
        `A batch of ${input.nodes.length} nodes needs a reusable enrollment key; this one is single-use. Nothing was enrolled.`,
        { nodes: input.nodes.length },
      );
    }
    const nodes: EnrolledNode[] = [];
    for (const node of input.nodes) nodes.push(await enrollOne(sql, key, node, policy));
    await countUses(sql, key.id, nodes.length);
    return { nodes };
  });
}
