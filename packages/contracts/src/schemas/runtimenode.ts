/** Wire schemas of the `runtimenode.*` procedures (node principal, except roster). */
import { z } from 'zod';
import { Capabilities } from '../capabilities.js';
import { AttachmentId, NodeId, ParticipantId, SessionId, Timestamp } from '../ids.js';
import { AttachmentState, PresenceHealthState, RuntimeNodeHealthState } from '../states.js';
import { EventEnvelopeVersion } from '../version.js';
import { NodeMetrics } from './nodes.js';

export const REASON_MAX_LENGTH = 512;
export const METRICS_MAX_GAUGES = 16;

const Reason = z.string().max(REASON_MAX_LENGTH);

export const HealthChange = z.strictObject({
  state: RuntimeNodeHealthState,
  reason: Reason.optional(),
});
export type HealthChange = z.infer<typeof HealthChange>;

export const AttachInput = z.strictObject({
  sessionId: SessionId,
  participantId: ParticipantId,
  nodeId: NodeId,
  nodeVersion: EventEnvelopeVersion,
  capabilities: Capabilities,
  healthState: RuntimeNodeHealthState,
  /**
   * The attachment's health change, in the same call: `capabilities` (non-empty) are its
   * declaration, as `runtimenode.capabilityupdate` with `healthChanges` right after the attach
   * would be. A read-only attach stays `registering`.
   */
  healthChanges: HealthChange.optional(),
});
export type AttachInput = z.infer<typeof AttachInput>;

export const AttachOutput = z.object({
  attachmentId: AttachmentId,
  state: AttachmentState,
  readOnly: z.boolean(),
  attachedAt: Timestamp,
  /**
   * The node's own stale attachment to another session that this attach ended (reason
   * `superseded`); absent when there was none.
   */
  superseded: z.object({ attachmentId: AttachmentId, sessionId: SessionId }).optional(),
});
export type AttachOutput = z.infer<typeof AttachOutput>;

const NonNegative = z.number().finite().nonnegative();

export const GaugeName = z.string().regex(/^[a-z][a-z0-9_.]{0,63}$/);

/** Small, bounded metrics a node may attach to a beat. */
export const HeartbeatMetrics = z.strictObject({
  cpuPercent: z.number().finite().min(0).max(100_000).optional(),
  memoryUsedBytes: NonNegative.optional(),
  memoryTotalBytes: NonNegative.optional(),
  uptimeSeconds: NonNegative.optional(),
  gauges: z
    .record(GaugeName, z.number().finite())
    .refine((g) => Object.keys(g).length <= METRICS_MAX_GAUGES, {
      message: `at most ${METRICS_MAX_GAUGES} custom gauges`,
    })
    .optional(),
});
export type HeartbeatMetrics = z.infer<typeof HeartbeatMetrics>;

export const HeartbeatInput = z.strictObject({
  nodeId: NodeId,
  healthState: RuntimeNodeHealthState,
  metrics: HeartbeatMetrics.optional(),
});
export type HeartbeatInput = z.infer<typeof HeartbeatInput>;

export const HeartbeatOutput = z.null();

export const CapabilityUpdateInput = z.strictObject({
  nodeId: NodeId,
  capabilities: Capabilities,
  healthChanges: HealthChange.optional(),
});
export type CapabilityUpdateInput = z.infer<typeof CapabilityUpdateInput>;

export const CapabilityUpdateOutput = z.object({
  nodeId: NodeId,
  state: AttachmentState,
  updatedAt: Timestamp,
});
export type CapabilityUpdateOutput = z.infer<typeof CapabilityUpdateOutput>;

export const DetachInput = z.strictObject({
  nodeId: NodeId,
  reason: Reason.optional(),
});
export type DetachInput = z.infer<typeof DetachInput>;

export const DetachOutput = z.null();

/**
 * `node.detach` (owner or admin): end the node's active attachment without revoking anything —
 * the node keeps its identity and may attach again (its next connection does).
 */
export const DetachNodeInput = z.strictObject({
  nodeId: NodeId,
  reason: Reason.optional(),
});
export type DetachNodeInput = z.infer<typeof DetachNodeInput>;

export const RosterInput = z.strictObject({ sessionId: SessionId });
export type RosterInput = z.infer<typeof RosterInput>;

export const RosterEntry = z.object({
  nodeId: NodeId,
  participantId: ParticipantId,
  state: AttachmentState,
  healthState: PresenceHealthState,
  lastHeartbeatAt: Timestamp.nullable(),
  readOnly: z.boolean(),
  capabilities: Capabilities,
  nodeVersion: EventEnvelopeVersion,
  attachedAt: Timestamp,
  /** The node's latest reported metrics (as in the node view's presence). */
  metrics: NodeMetrics.nullable(),
  metricsReportedAt: Timestamp.nullable(),
});
export type RosterEntry = z.infer<typeof RosterEntry>;

export const RosterOutput = z.object({ nodes: z.array(RosterEntry) });
export type RosterOutput = z.infer<typeof RosterOutput>;

export const RevokeAttachmentInput = z.strictObject({
  sessionId: SessionId,
  nodeId: NodeId,
  reason: Reason.optional(),
});
export type RevokeAttachmentInput = z.infer<typeof RevokeAttachmentInput>;
