/**
 * `policy.*` and `lease.*`: who may invoke a node's capability.
 *
 * A policy is set per node × capability (no row: `owner`):
 *   owner  — only the node's owner and admins;
 *   free   — also any active owner, collaborator or runtime contributor of a session the node is
 *            attached to right now;
 *   leased — only the holder of the capability's lease (one at a time, with expiry); owner and
 *            admins must hold it too, but may break someone else's;
 *   gated  — the owner and admins invoke directly; anyone else allowed under `free` waits for the
 *            owner's or an admin's approval of each invocation.
 */
import { z } from 'zod';
import { CapabilityAuthLevel, CapabilityName } from '../capabilities.js';
import { NodeId, ParticipantId, Timestamp } from '../ids.js';

export const CapabilityPolicy = z.enum(['owner', 'free', 'leased', 'gated']);
export type CapabilityPolicy = z.infer<typeof CapabilityPolicy>;

/** The policy of a capability that has none set. */
export const DEFAULT_CAPABILITY_POLICY: CapabilityPolicy = 'owner';

export const LEASE_TTL_MIN_SECONDS = 1;
/** One day: a lease is for a stretch of work, renewed while it lasts, never a standing grant. */
export const LEASE_TTL_MAX_SECONDS = 86_400;

export const LeaseTtlSeconds = z
  .number()
  .int()
  .min(LEASE_TTL_MIN_SECONDS)
  .max(LEASE_TTL_MAX_SECONDS);

export const LeaseId = z.uuid().brand<'LeaseId'>();
export type LeaseId = z.infer<typeof LeaseId>;

export const PolicySetInput = z.strictObject({
  nodeId: NodeId,
  capability: CapabilityName,
  policy: CapabilityPolicy,
});
export type PolicySetInput = z.infer<typeof PolicySetInput>;

export const PolicyGetInput = z.strictObject({
  nodeId: NodeId,
  /** Only this capability (its policy, set or default); omitted: every declared or set one. */
  capability: CapabilityName.optional(),
});
export type PolicyGetInput = z.infer<typeof PolicyGetInput>;

export const CapabilityPolicyView = z.object({
  nodeId: NodeId,
  capability: CapabilityName,
  policy: CapabilityPolicy,
  /** False: no policy was ever set, `policy` is the default (`owner`). */
  explicit: z.boolean(),
  /** Whether the node currently declares this capability (a policy may be set before it does). */
  declared: z.boolean(),
  /** The `authLevel` the node declares for it: a hint for the owner, never applied by itself. */
  declaredAuthLevel: CapabilityAuthLevel.nullable(),
  updatedBy: ParticipantId.nullable(),
  updatedAt: Timestamp.nullable(),
});
export type CapabilityPolicyView = z.infer<typeof CapabilityPolicyView>;

export const PolicyGetOutput = z.object({
  nodeId: NodeId,
  /** Sorted by capability name. */
  items: z.array(CapabilityPolicyView),
});
export type PolicyGetOutput = z.infer<typeof PolicyGetOutput>;

export const LeaseEndReason = z.enum(['released', 'broken', 'expired']);
export type LeaseEndReason = z.infer<typeof LeaseEndReason>;

export const LeaseView = z.object({
  leaseId: LeaseId,
  nodeId: NodeId,
  capability: CapabilityName,
  /** The holder; null when the caller is neither the holder nor the node's owner or an admin. */
  holderParticipantId: ParticipantId.nullable(),
  heldByCaller: z.boolean(),
  acquiredAt: Timestamp,
  expiresAt: Timestamp,
  /** Null while the lease is active. */
  endedAt: Timestamp.nullable(),
  endReason: LeaseEndReason.nullable(),
});
export type LeaseView = z.infer<typeof LeaseView>;

export const LeaseAcquireInput = z.strictObject({
  nodeId: NodeId,
  capability: CapabilityName,
  ttlSeconds: LeaseTtlSeconds,
});
export type LeaseAcquireInput = z.infer<typeof LeaseAcquireInput>;

export const LeaseRenewInput = z.strictObject({
  leaseId: LeaseId,
  ttlSeconds: LeaseTtlSeconds,
});
export type LeaseRenewInput = z.infer<typeof LeaseRenewInput>;

export const LeaseReleaseInput = z.strictObject({ leaseId: LeaseId });
export type LeaseReleaseInput = z.infer<typeof LeaseReleaseInput>;

export const LeaseListInput = z.strictObject({
  nodeId: NodeId,
  capability: CapabilityName.optional(),
});
export type LeaseListInput = z.infer<typeof LeaseListInput>;

export const LeaseListOutput = z.object({
  /** The node's active leases, sorted by capability. */
  items: z.array(LeaseView),
});
export type LeaseListOutput = z.infer<typeof LeaseListOutput>;
