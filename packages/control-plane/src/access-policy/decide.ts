/**
 * The access policy's decision on one invocation: may this participant invoke this capability of
 * this node now? Read in one statement (node, caller's relation to it, policy, active lease), by
 * the database clock; decides, never writes. The caller (command.invoke) records the outcome.
 *
 *   policy  owner/admin         eligible member¹          anyone else²
 *   owner   allow (owner/admin) deny not_owner            deny not_owner
 *   free    allow (owner/admin) allow (member)            deny not_member
 *   gated   allow (owner/admin) gate (needs approval)     deny not_member
 *   leased  holder: allow (lease); another holds it: deny lease_held_by_other;
 *           nobody holds it: deny lease_required — the same for owner, admin and member: the
 *           lease is exclusive use, so the owner and admins take (or break) it too;
 *           anyone else²: deny not_member (a lease they could never get is not mentioned)
 *
 *   ¹ an active owner, collaborator or runtime contributor of a session the node is attached to
 *     right now; a holder who lost that standing may no longer invoke on the lease.
 *   ² a participant who can see the node (e.g. through a session it was attached to earlier).
 *     One who cannot see it, and any caller for a revoked or unknown node, gets `node.not_found`
 *     thrown, exactly as `node.get` answers: no decision reveals that a node id exists.
 *
 * A lease past its `expiresAt` counts as ended here even before the sweep has ended it.
 */
import { DEFAULT_CAPABILITY_POLICY, TetherError, type CapabilityPolicy } from '@tether/contracts';
import { isAdmin, type ParticipantPrincipal } from '../auth/principal.js';
import { visibleNode } from '../auth/visibility.js';
import type { Sql } from '../db/pool.js';
import { attachedMemberSql } from './access.js';

/** Anything that runs a statement: the pool or a transaction's handle. */
export type Queryable = Sql;

export type InvocationDecision =
  | { outcome: 'allow'; policy: CapabilityPolicy; via: 'owner' | 'admin' | 'member' | 'lease' }
  | { outcome: 'gate'; policy: 'gated' }
  | {
      outcome: 'deny';
      policy: CapabilityPolicy;
      reason: 'not_owner' | 'not_member' | 'lease_required' | 'lease_held_by_other';
    };

/** The facts a decision is made from. */
export interface InvocationFacts {
  policy: CapabilityPolicy;
  owner: boolean;
  admin: boolean;
  member: boolean;
  /** An unexpired, unended lease on the capability exists. */
  leaseActive: boolean;
  /** ... and the caller holds it. */
  leaseHeldByCaller: boolean;
}

/** The table above, as a pure function of the facts. */
export function decide(f: InvocationFacts): InvocationDecision {
  const direct = f.owner ? ('owner' as const) : f.admin ? ('admin' as const) : null;
  switch (f.policy) {
    case 'owner':
      return direct
        ? { outcome: 'allow', policy: 'owner', via: direct }
        : { outcome: 'deny', policy: 'owner', reason: 'not_owner' };
    case 'free':
      if (direct) return { outcome: 'allow', policy: 'free', via: direct };
      return f.member
        ? { outcome: 'allow', policy: 'free', via: 'member' }
        : { outcome: 'deny', policy: 'free', reason: 'not_member' };
    case 'gated':
      if (direct) return { outcome: 'allow', policy: 'gated', via: direct };
      return f.member
        ? { outcome: 'gate', policy: 'gated' }
        : { outcome: 'deny', policy: 'gated', reason: 'not_member' };
    case 'leased':
      if (!direct && !f.member) return { outcome: 'deny', policy: 'leased', reason: 'not_member' };
      if (f.leaseHeldByCaller) return { outcome: 'allow', policy: 'leased', via: 'lease' };
      return {
        outcome: 'deny',
        policy: 'leased',
        reason: f.leaseActive ? 'lease_held_by_other' : 'lease_required',
      };
  }
}

export async function decideInvocation(
  db: Queryable,
  input: { principal: ParticipantPrincipal; nodeId: string; capability: string },
): Promise<InvocationDecision> {
  const { principal, nodeId, capability } = input;
  const { rows } = await db.query<{
    owner: boolean;
    visible: boolean;
    member: boolean;
    policy: CapabilityPolicy | null;
    lease_holder: string | null;
  }>(
    `SELECT n.owner_participant_id = $2 AS owner, ${visibleNode('$2')} AS visible,
            ${attachedMemberSql('$2')} AS member,
            (SELECT p.policy FROM node_capability_policies p
              WHERE p.node_id = n.node_id AND p.capability = $3) AS policy,
            (SELECT l.holder_id FROM capability_leases l
              WHERE l.node_id = n.node_id AND l.capability = $3
                AND l.ended_at IS NULL AND l.expires_at > now()) AS lease_holder
       FROM nodes n WHERE n.node_id = $1 AND n.status = 'active'`,
    [nodeId, principal.participantId, capability],
  );
  const row = rows[0];
  const admin = isAdmin(principal);
  if (!row || (!admin && !row.visible)) throw new TetherError('node.not_found', 'No such node.');
  return decide({
    policy: row.policy ?? DEFAULT_CAPABILITY_POLICY,
    owner: row.owner,
    admin,
    member: row.member,
    leaseActive: row.lease_holder !== null,
    leaseHeldByCaller: row.lease_holder === principal.participantId,
  });
}

/** The node's owner or an admin may approve or deny a gated invocation (false: unknown node). */
export async function mayDecideGated(
  db: Queryable,
  input: { principal: ParticipantPrincipal; nodeId: string },
): Promise<boolean> {
  if (isAdmin(input.principal)) {
    const { rowCount } = await db.query(`SELECT 1 FROM nodes WHERE node_id = $1`, [input.nodeId]);
    return rowCount > 0;
  }
  const { rowCount } = await db.query(
    `SELECT 1 FROM nodes WHERE node_id = $1 AND owner_participant_id = $2`,
    [input.nodeId, input.principal.participantId],
  );
  return rowCount > 0;
}
