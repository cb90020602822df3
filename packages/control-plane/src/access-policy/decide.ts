/**
 * Who may invoke a node's capability. This is the `owner` default only (the node's owner and
 * admins; everyone else is refused `not_owner`); the full policy (free, leased, gated) replaces
 * this file behind the same two functions.
 */
import type { CapabilityPolicy } from '@tether/contracts';
import type { ParticipantPrincipal } from '../auth/principal.js';
import type { Sql } from '../db/pool.js';

export type Queryable = Sql;

export type InvocationDecision =
  | { outcome: 'allow'; policy: CapabilityPolicy; via: 'owner' | 'admin' | 'member' | 'lease' }
  | { outcome: 'gate'; policy: 'gated' }
  | {
      outcome: 'deny';
      policy: CapabilityPolicy;
      reason: 'not_owner' | 'not_member' | 'lease_required' | 'lease_held_by_other';
    };

async function ownerOf(db: Queryable, nodeId: string): Promise<string | null> {
  const { rows } = await db.query<{ owner: string }>(
    `SELECT owner_participant_id::text AS owner FROM nodes WHERE node_id = $1`,
    [nodeId],
  );
  return rows[0]?.owner ?? null;
}

export async function decideInvocation(
  db: Queryable,
  input: { principal: ParticipantPrincipal; nodeId: string; capability: string },
): Promise<InvocationDecision> {
  if (input.principal.role === 'admin') return { outcome: 'allow', policy: 'owner', via: 'admin' };
  const owner = await ownerOf(db, input.nodeId);
  if (owner === input.principal.participantId) {
    return { outcome: 'allow', policy: 'owner', via: 'owner' };
  }
  return { outcome: 'deny', policy: 'owner', reason: 'not_owner' };
}

/** The node's owner or an admin may approve or deny its gated commands. */
export async function mayDecideGated(
  db: Queryable,
  input: { principal: ParticipantPrincipal; nodeId: string },
): Promise<boolean> {
  if (input.principal.role === 'admin') return true;
  return (await ownerOf(db, input.nodeId)) === input.principal.participantId;
}
