/**
 * The device registry: persistent node identities. Registering a node creates its identity row
 * and its `offline` presence row in one transaction, so every known node is listed (offline)
 * until it beats, including after a server restart.
 *
 * Identity writes (`node.update`, `node.revoke`, `node.rotateToken`). Invariants:
 *  - only the owner or an admin changes a node; a co-member who can see it gets `auth.forbidden`,
 *    anyone else `node.not_found` (as for a node that does not exist);
 *  - revocation is terminal: status `revoked`, every attachment `revoked`, presence `offline`,
 *    the token hash kept (so the token can never authenticate again), audited in the same
 *    transaction; revoking again changes only what is still not revoked and emits no `node.revoked`;
 *  - a rotation replaces the token hash only while the presented credential is still the current
 *    one, so a stale (cached) credential cannot rotate twice;
 *  - credential revocations are published on the bus only after commit;
 *  - a revoked identity cannot be updated or rotated.
 */
import { randomUUID } from 'node:crypto';
import {
  TetherError,
  fleetEvent,
  type AttachmentState,
  type NodeUpdatedField,
  type Capabilities,
  type NodeId,
  type NodeUpdateInput,
  type NodeView,
  type ParticipantId,
} from '@tether/contracts';
import type { z } from 'zod';
import type { NodePrincipal, ParticipantPrincipal } from '../auth/principal.js';
import { isAdmin } from '../auth/principal.js';
import type { RevocationBus } from '../auth/revocations.js';
import { generateToken, hashToken } from '../auth/tokens.js';
import type { Db, Sql } from '../db/pool.js';
import { appendEvent } from '../events/append.js';
import { endActiveAttachment } from '../runtime-nodes/end-attachment.js';
import { insertOfflinePresence, writePresence } from '../runtime-nodes/presence.js';
import { loadNodeView } from './queries.js';

export interface RegisterNodeInput {
  nodeId?: string | undefined;
  ownerParticipantId: ParticipantId;
  name: string;
  nodeType: string;
  platform?: string | undefined;
  location?: string | undefined;
  labels?: Record<string, string> | undefined;
  metadata?: Record<string, unknown> | undefined;
  capabilities?: Capabilities | undefined;
  nodeVersion?: string | undefined;
  /** SHA-256 of the node token; NULL until a pairing is claimed. */
  tokenHash?: Buffer | null | undefined;
}

export interface RegisteredNode {
  nodeId: NodeId;
  ownerParticipantId: ParticipantId;
  enrolledAt: Date;
}

/** Server-generated ids are `node-<uuid>`: they satisfy the node-id pattern and never collide. */
export function generateNodeId(): NodeId {
  return `node-${randomUUID()}` as NodeId;
}

/** Who may name a new node's id (settings.memberNodeIds, from TETHER_MEMBER_NODE_IDS). */
export interface NodeIdPolicy {
  /** Members may name ids too, and so learn which ids exist (single-team servers). */
  memberNodeIds: boolean;
}

export const ADMINS_NAME_NODE_IDS: NodeIdPolicy = { memberNodeIds: false };

/**
 * A new node's id may be named by its future owner only if that owner sees every node — an
 * admin — unless the policy lets members name ids too. Whoever may claim any free id learns
 * whether an id is taken (a free id succeeds, a taken one cannot), including ids of nodes they
 * cannot see; so members, who see only their own and co-members' nodes, get
 * `node.id_not_allowed` for every named id, taken or free. The answer depends on the owner's
 * role alone, never on which nodes exist, and is given before the id is looked at.
 */
export function assertMayNameNodeId(
  ownerRole: 'admin' | 'member',
  nodeId: string | null | undefined,
  policy: NodeIdPolicy,
): void {
  if (nodeId === null || nodeId === undefined) return;
  if (ownerRole === 'admin' || policy.memberNodeIds) return;
  throw new TetherError(
    'node.id_not_allowed',
    "Only an administrator's enrollment key or approval may choose the node id; omit nodeId to get a generated one.",
  );
}

/** Registers a node inside the caller's transaction (enrollment, pairing approval). */
export async function insertNode(sql: Sql, input: RegisterNodeInput): Promise<RegisteredNode> {
  const nodeId = input.nodeId ?? generateNodeId();
  {
    const { rows } = await sql.query<{
      node_id: string;
      owner_participant_id: string;
      enrolled_at: Date;
    }>(
      `INSERT INTO nodes (node_id, owner_participant_id, name, node_type, platform, location, labels, metadata,
                          capabilities, node_version, token_hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       RETURNING node_id, owner_participant_id, enrolled_at`,
      [
        nodeId,
        input.ownerParticipantId,
        input.name,
        input.nodeType,
        input.platform ?? null,
        input.location ?? null,
        JSON.stringify(input.labels ?? {}),
        JSON.stringify(input.metadata ?? {}),
        JSON.stringify(input.capabilities ?? {}),
        input.nodeVersion ?? null,
        input.tokenHash ?? null,
      ],
    );
    await insertOfflinePresence(sql, nodeId);
    const row = rows[0]!;
    return {
      nodeId: row.node_id as NodeId,
      ownerParticipantId: row.owner_participant_id as ParticipantId,
      enrolledAt: row.enrolled_at,
    };
  }
}

/** Registers a node in its own transaction. */
export function registerNode(db: Db, input: RegisterNodeInput): Promise<RegisteredNode> {
  return db.tx((sql) => insertNode(sql, input));
}

interface NodeAccess {
  status: 'active' | 'revoked';
}

/**
 * The caller may change this node: its owner or an admin. A node the caller cannot see at all is
 * `node.not_found`; one they see as a session co-member is `auth.forbidden`.
 */
async function requireNodeOwner(
  sql: Sql,
  actor: ParticipantPrincipal,
  nodeId: string,
  lock: '' | 'FOR UPDATE OF n',
): Promise<NodeAccess> {
  const { rows } = await sql.query<{
    status: 'active' | 'revoked';
    owner: boolean;
    visible: boolean;
  }>(
    `SELECT n.status, n.owner_participant_id = $2 AS owner,
            (n.owner_participant_id = $2 OR EXISTS (
               SELECT 1 FROM runtime_node_attachments va
                 JOIN session_memberships vm ON vm.session_id = va.session_id
                WHERE va.node_id = n.node_id AND vm.participant_id = $2 AND vm.state = 'active')) AS visible
       FROM nodes n WHERE n.node_id = $1 ${lock}`,
    [nodeId, actor.participantId],
  );
  const row = rows[0];
  const admin = isAdmin(actor);
  if (!row || (!admin && !row.visible)) throw new TetherError('node.not_found', 'No such node.');
  if (!admin && !row.owner) {
    throw new TetherError('auth.forbidden', "Only the node's owner or an admin may do this.");
  }
  return { status: row.status };
}

type UpdateInput = z.infer<typeof NodeUpdateInput>;

/**
 * Sets the given fields (labels and metadata are full replacements; `location: null` clears it).
 * Only fields whose value actually changes are written and listed in the `node.updated` event;
 * an update that changes nothing writes nothing.
 */
export async function updateNode(
  db: Db,
  actor: ParticipantPrincipal,
  input: UpdateInput,
): Promise<NodeView> {
  return db.tx(async (sql) => {
    const access = await requireNodeOwner(sql, actor, input.nodeId, 'FOR UPDATE OF n');
    if (access.status === 'revoked') {
      throw new TetherError(
        'node.not_found',
        'The node was revoked; a revoked identity cannot be changed.',
        {
          status: 'revoked',
        },
      );
    }
    // Checked against the contract's field list by fleetEvent below.
    const { rows } = await sql.query<{ changed: NodeUpdatedField[] }>(
      `WITH cur AS (
         SELECT node_id, name, location, labels, metadata FROM nodes WHERE node_id = $1
       ), next AS (
         SELECT node_id,
                COALESCE($2::text, name) AS name,
                CASE WHEN $3::boolean THEN $4::text ELSE location END AS location,
                COALESCE($5::jsonb, labels) AS labels,
                COALESCE($6::jsonb, metadata) AS metadata
           FROM cur
       ), diff AS (
         SELECT next.*, array_remove(ARRAY[
                  CASE WHEN next.name IS DISTINCT FROM cur.name THEN 'name' END,
                  CASE WHEN next.location IS DISTINCT FROM cur.location THEN 'location' END,
                  CASE WHEN next.labels IS DISTINCT FROM cur.labels THEN 'labels' END,
                  CASE WHEN next.metadata IS DISTINCT FROM cur.metadata THEN 'metadata' END
                ], NULL) AS changed
           FROM cur JOIN next USING (node_id)
       )
       UPDATE nodes n
          SET name = diff.name, location = diff.location, labels = diff.labels, metadata = diff.metadata,
              updated_at = now()
         FROM diff
        WHERE n.node_id = diff.node_id AND cardinality(diff.changed) > 0
       RETURNING diff.changed`,
      [
        input.nodeId,
        input.name ?? null,
        input.location !== undefined,
        input.location ?? null,
        input.labels === undefined ? null : JSON.stringify(input.labels),
        input.metadata === undefined ? null : JSON.stringify(input.metadata),
      ],
    );
    const changed = rows[0]?.changed ?? [];
    if (changed.length > 0) {
      await appendEvent(
        sql,
        fleetEvent('node.updated', {
          changed,
          by: { kind: 'participant', participantId: actor.participantId },
        }),
        { nodeId: input.nodeId },
      );
    }
    return loadNodeView(sql, input.nodeId);
  });
}

/**
 * Revokes the node identity (owner or admin). Writes attachments, then the node, then presence:
 * the order attach and capability updates take their locks in, so the two never deadlock.
 * Resolves after commit, once the old credential has been published as revoked.
 */
export async function revokeNode(
  db: Db,
  actor: ParticipantPrincipal,
  input: { nodeId: string },
  revocations: RevocationBus,
): Promise<null> {
  const revokedHash = await db.tx(async (sql) => {
    await requireNodeOwner(sql, actor, input.nodeId, '');
    const { rows: attachments } = await sql.query<{
      session_id: string;
      previous_state: AttachmentState;
    }>(
      `UPDATE runtime_node_attachments a SET state = 'revoked', updated_at = now()
         FROM (SELECT id, state FROM runtime_node_attachments
                WHERE node_id = $1 AND state <> 'revoked' FOR UPDATE) prev
        WHERE a.id = prev.id
        RETURNING a.session_id, prev.state AS previous_state`,
      [input.nodeId],
    );
    const { rows: revoked } = await sql.query<{ token_hash: Buffer | null }>(
      `UPDATE nodes SET status = 'revoked', revoked_at = now(), updated_at = now()
        WHERE node_id = $1 AND status = 'active'
        RETURNING token_hash`,
      [input.nodeId],
    );
    // Row locks first, events last (see events/append.ts).
    await writePresence(sql, input.nodeId, { health: 'offline', beat: false, cause: 'revoke' });
    const transitioned = revoked[0] !== undefined;
    if (transitioned) {
      await appendEvent(
        sql,
        fleetEvent('node.revoked', {
          by: { kind: 'participant', participantId: actor.participantId },
          attachmentsRevoked: attachments.length,
        }),
        { nodeId: input.nodeId },
      );
    }
    for (const row of attachments) {
      await appendEvent(
        sql,
        fleetEvent('runtimenode.revoked', {
          previousState: row.previous_state,
          reason: 'node_revoked',
          by: actor.participantId,
        }),
        { nodeId: input.nodeId, sessionId: row.session_id },
      );
    }
    return transitioned ? (revoked[0]!.token_hash?.toString('hex') ?? null) : null;
  });
  if (revokedHash !== null) {
    revocations.publish({
      credentialHashes: [revokedHash],
      nodeId: input.nodeId,
      reason: 'node_revoked',
    });
  }
  return null;
}

/**
 * The owner (or an admin) ends the node's active attachment without revoking anything: the row
 * goes offline, the node keeps its identity and may attach again — to this session or another
 * (its next attach, e.g. the SDK's next connection, does). Presence is left as it is: a node
 * still connected stays online, unattached. Idempotent: no active attachment, nothing written.
 * A participant who may not see the node gets node.not_found, as for a missing one.
 */
export async function detachNode(
  db: Db,
  actor: ParticipantPrincipal,
  input: { nodeId: string; reason?: string | undefined },
): Promise<null> {
  await db.tx(async (sql) => {
    await requireNodeOwner(sql, actor, input.nodeId, '');
    await endActiveAttachment(sql, input.nodeId, input.reason ?? null, {
      kind: 'participant',
      participantId: actor.participantId,
    });
  });
  return null;
}

/**
 * The node replaces its own token. The new token is returned once and only its hash is stored;
 * the old one stops authenticating at commit (and at once in this replica's auth cache).
 */
export async function rotateNodeToken(
  db: Db,
  principal: NodePrincipal,
  revocations: RevocationBus,
): Promise<{ nodeToken: string }> {
  const nodeToken = generateToken('tnd_');
  const presented =
    principal.credentialHash === undefined ? null : Buffer.from(principal.credentialHash, 'hex');
  const oldHash = await db.tx(async (sql) => {
    const { rows } = await sql.query<{ old_hash: Buffer | null }>(
      `UPDATE nodes n SET token_hash = $2, updated_at = now()
         FROM (SELECT node_id, token_hash FROM nodes
                WHERE node_id = $1 AND status = 'active' AND ($3::bytea IS NULL OR token_hash = $3)
                FOR UPDATE) old
        WHERE n.node_id = old.node_id
        RETURNING old.token_hash AS old_hash`,
      [principal.nodeId, hashToken(nodeToken), presented],
    );
    if (!rows[0]) {
      throw new TetherError(
        'auth.unauthenticated',
        'The credential is no longer valid for this node.',
      );
    }
    await appendEvent(
      sql,
      fleetEvent('node.updated', {
        changed: ['token'],
        by: { kind: 'node', nodeId: principal.nodeId },
      }),
      { nodeId: principal.nodeId },
    );
    return rows[0].old_hash?.toString('hex') ?? null;
  });
  if (oldHash !== null) {
    revocations.publish({
      credentialHashes: [oldHash],
      nodeId: principal.nodeId,
      reason: 'token_rotated',
    });
  }
  return { nodeToken };
}

/**
 * `node.reissueToken`: the owner (or an admin) replaces a node's token, e.g. for a device that
 * lost it or leaked it. The old token stops working at once (its sockets and streams end); the
 * new one is returned once. A revoked identity gets no new token.
 */
export async function reissueNodeToken(
  db: Db,
  actor: ParticipantPrincipal,
  input: { nodeId: string },
  revocations: RevocationBus,
): Promise<{ nodeToken: string }> {
  const nodeToken = generateToken('tnd_');
  const oldHash = await db.tx(async (sql) => {
    const access = await requireNodeOwner(sql, actor, input.nodeId, 'FOR UPDATE OF n');
    if (access.status === 'revoked') {
      throw new TetherError(
        'node.not_found',
        'The node was revoked; a revoked identity gets no new token.',
        { status: 'revoked' },
      );
    }
    const { rows } = await sql.query<{ old_hash: Buffer | null }>(
      `UPDATE nodes n SET token_hash = $2, updated_at = now()
         FROM (SELECT node_id, token_hash FROM nodes WHERE node_id = $1) old
        WHERE n.node_id = old.node_id
        RETURNING old.token_hash AS old_hash`,
      [input.nodeId, hashToken(nodeToken)],
    );
    await appendEvent(
      sql,
      fleetEvent('node.updated', {
        changed: ['token'],
        by: { kind: 'participant', participantId: actor.participantId },
      }),
      { nodeId: input.nodeId },
    );
    return rows[0]?.old_hash?.toString('hex') ?? null;
  });
  if (oldHash !== null) {
    revocations.publish({
      credentialHashes: [oldHash],
      nodeId: input.nodeId,
      reason: 'token_rotated',
    });
  }
  return { nodeToken };
}
