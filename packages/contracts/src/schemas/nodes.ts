/** `node.*`: the device registry and "who is online and can do Y". */
import { z } from 'zod';
import { Capabilities, CapabilityName } from '../capabilities.js';
import { AttachmentId, NodeId, ParticipantId, SessionId, Timestamp } from '../ids.js';
import { NodeState, PresenceHealthState } from '../states.js';
import { DisplayName, Labels, Location, Metadata, PageInput, page } from './common.js';
import { TokenString } from './participants.js';

export const NodeStatus = z.enum(['active', 'revoked']);

export const NodePresenceView = z.object({
  healthState: PresenceHealthState,
  lastHeartbeatAt: Timestamp.nullable(),
  onlineSince: Timestamp.nullable(),
});

export const NodeAttachmentView = z.object({
  attachmentId: AttachmentId,
  sessionId: SessionId,
  state: NodeState,
  attachedAt: Timestamp,
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
  clientVersion: z.string().nullable(),
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

export const NodeRotateTokenInput = z.strictObject({}).optional();
export const NodeRotateTokenOutput = z.object({ nodeToken: TokenString });
