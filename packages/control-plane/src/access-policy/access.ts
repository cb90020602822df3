/**
 * What a participant is to a node, read in one statement: owner, admin, able to see it, and an
 * active owner, collaborator or runtime contributor of a session the node is attached to right
 * now (an attachment in `registering`, `online` or `degraded`). Every rule of the access policy
 * is built from these facts, so `decideInvocation`, `policy.*` and `lease.*` agree on who is who.
 *
 * A node the caller cannot see (the registry's visibility rule), a revoked one and one that does
 * not exist are all `node.not_found`: the answer never tells a stranger that a node id exists.
 */
import { ATTACHING_ROLES, TetherError } from '@tether/contracts';
import { isAdmin, type ParticipantPrincipal } from '../auth/principal.js';
import { visibleNode } from '../auth/visibility.js';
import type { Sql } from '../db/pool.js';
import { ACTIVE_ATTACHMENT_STATES_SQL, sqlTextList } from '../db/sql-lists.js';

const ATTACHING_ROLES_SQL = sqlTextList(ATTACHING_ROLES);

export interface NodeAccess {
  nodeId: string;
  ownerParticipantId: string;
  owner: boolean;
  admin: boolean;
  /** An eligible member of a session the node is attached to right now. */
  member: boolean;
  /** The node's declared capabilities (a JSON object). */
  capabilities: Record<string, unknown>;
}

/** SQL: `$viewer` is an eligible member of a session the outer `nodes n` is attached to now. */
export function attachedMemberSql(viewer: string): string {
  return `EXISTS (
    SELECT 1 FROM runtime_node_attachments aa
      JOIN session_memberships am ON am.session_id = aa.session_id
     WHERE aa.node_id = n.node_id AND aa.state IN ${ACTIVE_ATTACHMENT_STATES_SQL}
       AND am.participant_id = ${viewer} AND am.state = 'active' AND am.role IN ${ATTACHING_ROLES_SQL})`;
}

/**
 * The caller's relation to an active node, or `node.not_found`. `lock` takes the node row
 * (`FOR NO KEY UPDATE`) so that writes about one node's policies and leases queue up behind it.
 */
export async function nodeAccess(
  sql: Sql,
  principal: ParticipantPrincipal,
  nodeId: string,
  lock = false,
): Promise<NodeAccess> {
  const { rows } = await sql.query<{
    owner_participant_id: string;
    owner: boolean;
    visible: boolean;
    member: boolean;
    capabilities: Record<string, unknown>;
  }>(
    `SELECT n.owner_participant_id, n.owner_participant_id = $2 AS owner,
            ${visibleNode('$2')} AS visible, ${attachedMemberSql('$2')} AS member, n.capabilities
       FROM nodes n WHERE n.node_id = $1 AND n.status = 'active'
       ${lock ? 'FOR NO KEY UPDATE OF n' : ''}`,
    [nodeId, principal.participantId],
  );
  const row = rows[0];
  const admin = isAdmin(principal);
  if (!row || (!admin && !row.visible)) throw new TetherError('node.not_found', 'No such node.');
  return {
    nodeId,
    ownerParticipantId: row.owner_participant_id,
    owner: row.owner,
    admin,
    member: row.member,
    capabilities: row.capabilities,
  };
}

/** Owner or admin: may set policies, break leases, decide gated invocations. */
export function isOwnerOrAdmin(access: NodeAccess): boolean {
  return access.owner || access.admin;
}

/** May invoke under `free`, request under `gated`, acquire a lease under `leased`. */
export function isEligible(access: NodeAccess): boolean {
  return access.owner || access.admin || access.member;
}
