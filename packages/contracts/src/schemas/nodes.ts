/** `node.*`: the device registry and "who is online and can do Y". */
import { z } from 'zod';
import { Capabilities, CapabilityName } from '../capabilities.js';
import {
  AttachmentId,
  NodeId,
  ParticipantId,
  SessionId,
  Timestamp,
  TimestampInput,
} from '../ids.js';
import { AttachmentState, PresenceHealthState } from '../states.js';
import { DisplayName, Labels, Location, Metadata, PageInput, page } from './common.js';
import { TokenString } from './participants.js';

export const NodeStatus = z.enum(['active', 'revoked']);

/**
 * Metrics as a node reported them on a heartbeat (see `HeartbeatMetrics`): every field optional,
 * an open object so that metrics added later are additive.
 */
export const NodeMetrics = z.object({
  cpuPercent: z.number().optional(),
  memoryUsedBytes: z.number().optional(),
  memoryTotalBytes: z.number().optional(),
  uptimeSeconds: z.number().optional(),
  gauges: z.record(z.string(), z.number()).optional(),
});
export type NodeMetrics = z.infer<typeof NodeMetrics>;

export const NodePresenceView = z.object({
  healthState: PresenceHealthState,
  lastHeartbeatAt: Timestamp.nullable(),
  onlineSince: Timestamp.nullable(),
  /** The metrics of the latest heartbeat that carried any; kept when later beats carry none. */
  metrics: NodeMetrics.nullable(),
  /** When `metrics` were reported (the database clock at that beat). */
  metricsReportedAt: Timestamp.nullable(),
});

export const NodeAttachmentView = z.object({
  attachmentId: AttachmentId,
  sessionId: SessionId,
  state: AttachmentState,
  attachedAt: Timestamp,
  /** The node's version is below the session's floor (as in the roster). */
  readOnly: z.boolean(),
});

export const NodeView = z.object({
  nodeId: NodeId,
  ownerParticipantId: ParticipantId,
  name: z.string(),
  nodeType: z.string(),
  platform: z.string().nullable(),
  location: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  metadata: z.record(z.string(), z.json()),
  capabilities: Capabilities,
  nodeVersion: z.string().nullable(),
  status: NodeStatus,
  enrolledAt: Timestamp,
  updatedAt: Timestamp,
  revokedAt: Timestamp.nullable(),
  presence: NodePresenceView,
  activeAttachment: NodeAttachmentView.nullable(),
});
export type NodeView = z.infer<typeof NodeView>;

/** `label` filters as "key=value" (exact) or "key" (present). */
export const LabelFilter = z.string().min(1).max(320);

export const NodeListInput = z
  .strictObject({
    status: NodeStatus.optional(),
    healthState: PresenceHealthState.optional(),
    capability: CapabilityName.optional(),
    nodeType: z.string().min(1).max(64).optional(),
    location: z.string().min(1).max(200).optional(),
    label: LabelFilter.optional(),
    sessionId: SessionId.optional(),
    search: z.string().min(1).max(200).optional(),
    ...PageInput,
  })
  .optional();
export type NodeListInput = z.infer<typeof NodeListInput>;
export const NodeListOutput = page(NodeView);

export const NodeIdInput = z.strictObject({ nodeId: NodeId });

/** `node.counts`: the `node.list` filters except presence and paging. */
export const NodeCountsInput = z
  .strictObject({
    status: NodeStatus.optional(),
    capability: CapabilityName.optional(),
    nodeType: z.string().min(1).max(64).optional(),
    location: z.string().min(1).max(200).optional(),
    label: LabelFilter.optional(),
    sessionId: SessionId.optional(),
    search: z.string().min(1).max(200).optional(),
  })
  .optional();
export type NodeCountsInput = z.infer<typeof NodeCountsInput>;

/**
 * How many of the nodes you may see (matching the filters) are in each presence state. Active
 * identities only in `online`/`degraded`/`offline`; revoked identities are counted apart.
 */
export const NodeCountsOutput = z.object({
  online: z.number().int().nonnegative(),
  degraded: z.number().int().nonnegative(),
  offline: z.number().int().nonnegative(),
  revoked: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
});
export type NodeCountsOutput = z.infer<typeof NodeCountsOutput>;

export const NodeIsOnlineOutput = z.object({
  nodeId: NodeId,
  online: z.boolean(),
  healthState: PresenceHealthState,
  onlineSince: Timestamp.nullable(),
  lastHeartbeatAt: Timestamp.nullable(),
});

export const FindOnlineWithCapabilityInput = z.strictObject({
  capability: CapabilityName,
  sessionId: SessionId.optional(),
  ...PageInput,
});
export const FindOnlineWithCapabilityOutput = page(NodeView);

export const NodeUpdateInput = z.strictObject({
  nodeId: NodeId,
  name: DisplayName.optional(),
  location: Location.nullable().optional(),
  labels: Labels.optional(),
  metadata: Metadata.optional(),
});

/** The most samples `node.metrics` can return (the ring's largest configurable size). */
export const METRICS_HISTORY_MAX = 10_000;

export const NodeMetricsInput = z.strictObject({
  nodeId: NodeId,
  /** Only samples taken after this time (exclusive): pass back the last sample's `at` to poll. */
  since: TimestampInput.optional(),
});
export type NodeMetricsInput = z.infer<typeof NodeMetricsInput>;

/** One sample of the history: the metrics of one beat and when it was taken. */
export const NodeMetricsSample = NodeMetrics.extend({ at: Timestamp });
export type NodeMetricsSample = z.infer<typeof NodeMetricsSample>;

export const NodeMetricsOutput = z.object({
  nodeId: NodeId,
  /** At most one sample is kept per this many milliseconds, however often the node beats. */
  sampleIntervalMs: z.number().positive(),
  /** The history keeps this many samples per node (a ring: the newest replaces the oldest). */
  maxSamples: z.number().int().positive().max(METRICS_HISTORY_MAX),
  /** Oldest first. */
  samples: z.array(NodeMetricsSample).max(METRICS_HISTORY_MAX),
});
export type NodeMetricsOutput = z.infer<typeof NodeMetricsOutput>;

export const NodeRotateTokenInput = z.strictObject({}).optional();
export const NodeRotateTokenOutput = z.object({ nodeToken: TokenString });
