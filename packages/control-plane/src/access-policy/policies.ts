/**
 * `policy.set` / `policy.get`: a capability's access policy per node, persisted
 * (`node_capability_policies`; no row: `owner`). Invariants: only the node's owner or an admin
 * sets a policy (`policy.not_owner`; a caller who cannot see the node gets `node.not_found`); a
 * change is written with its `policy.changed` event in one transaction, and setting the policy a
 * capability already has writes nothing; anyone who can see the node may read its policies
 * (a member needs to know whether to acquire a lease or expect an approval).
 */
import {
  CapabilityAuthLevel,
  DEFAULT_CAPABILITY_POLICY,
  TetherError,
  fleetEvent,
  type CapabilityPolicy,
  type CapabilityPolicyView,
  type NodeId,
  type ParticipantId,
  type PolicyGetInput,
  type PolicyGetOutput,
  type PolicySetInput,
} from '@tether/contracts';
import type { ParticipantPrincipal } from '../auth/principal.js';
import type { Db, Sql } from '../db/pool.js';
import { appendEvent } from '../events/append.js';
import { isOwnerOrAdmin, nodeAccess } from './access.js';

interface PolicyRow {
  capability: string;
  policy: CapabilityPolicy;
  updated_by: string;
  updated_at: Date;
}

function view(
  nodeId: string,
  capability: string,
  row: PolicyRow | undefined,
  capabilities: Record<string, unknown>,
): CapabilityPolicyView {
  const descriptor = capabilities[capability];
  const authLevel = CapabilityAuthLevel.safeParse(
    typeof descriptor === 'object' && descriptor !== null
      ? (descriptor as Record<string, unknown>).authLevel
      : undefined,
  );
  return {
    nodeId: nodeId as NodeId,
    capability,
    policy: row?.policy ?? DEFAULT_CAPABILITY_POLICY,
    explicit: row !== undefined,
    declared: Object.hasOwn(capabilities, capability),
    declaredAuthLevel: authLevel.success ? authLevel.data : null,
    updatedBy: (row?.updated_by ?? null) as ParticipantId | null,
    updatedAt: row?.updated_at ?? null,
  };
}

async function policyRows(sql: Sql, nodeId: string, capability?: string): Promise<PolicyRow[]> {
  const { rows } = await sql.query<PolicyRow>(
    `SELECT capability, policy, updated_by, updated_at FROM node_capability_policies
      WHERE node_id = $1 AND ($2::text IS NULL OR capability = $2) ORDER BY capability`,
    [nodeId, capability ?? null],
  );
  return rows;
}

export async function setPolicy(
  db: Db,
  actor: ParticipantPrincipal,
  input: PolicySetInput,
): Promise<CapabilityPolicyView> {
  return db.tx(async (sql) => {
    // The node row lock orders concurrent changes, so each event's `from` is the policy it replaced.
    const access = await nodeAccess(sql, actor, input.nodeId, true);
    if (!isOwnerOrAdmin(access)) {
      throw new TetherError(
        'policy.not_owner',
        "Only the node's owner or an admin may set a capability's access policy.",
      );
    }
    const [current] = await policyRows(sql, input.nodeId, input.capability);
    const from = current?.policy ?? DEFAULT_CAPABILITY_POLICY;
    if (current !== undefined && from === input.policy) {
      return view(input.nodeId, input.capability, current, access.capabilities);
    }
    const { rows } = await sql.query<PolicyRow>(
      `INSERT INTO node_capability_policies (node_id, capability, policy, updated_by)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (node_id, capability)
       DO UPDATE SET policy = EXCLUDED.policy, updated_by = EXCLUDED.updated_by, updated_at = now()
       RETURNING capability, policy, updated_by, updated_at`,
      [input.nodeId, input.capability, input.policy, actor.participantId],
    );
    if (from !== input.policy) {
      await appendEvent(
        sql,
        fleetEvent('policy.changed', {
          capability: input.capability,
          from,
          to: input.policy,
          by: actor.participantId,
        }),
        { nodeId: input.nodeId },
      );
    }
    return view(input.nodeId, input.capability, rows[0], access.capabilities);
  });
}

/**
 * One capability's policy (set or default), or every capability the node declares or has a
 * policy for, sorted by name.
 */
export async function getPolicies(
  db: Db,
  actor: ParticipantPrincipal,
  input: PolicyGetInput,
): Promise<PolicyGetOutput> {
  return db.withClient(async (sql) => {
    const access = await nodeAccess(sql, actor, input.nodeId);
    const rows = await policyRows(sql, input.nodeId, input.capability);
    const byName = new Map(rows.map((r) => [r.capability, r]));
    const names =
      input.capability !== undefined
        ? [input.capability]
        : [...new Set([...Object.keys(access.capabilities), ...byName.keys()])].sort();
    return {
      nodeId: input.nodeId,
      items: names.map((name) => view(input.nodeId, name, byName.get(name), access.capabilities)),
    };
  });
}
