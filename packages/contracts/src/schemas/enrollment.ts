/** `enrollment.*` (participant) and `device.enroll` (public, key-gated). */
import { z } from 'zod';
import { Capabilities } from '../capabilities.js';
import { NodeId, ParticipantId, Timestamp } from '../ids.js';
import { EventEnvelopeVersion } from '../version.js';
import { DisplayName, Labels, Location, NodeType, Platform } from './common.js';
import { TokenString } from './participants.js';

export const ENROLLMENT_KEY_PREFIX = 'tek_';
export const ENROLLMENT_KEY_DEFAULT_TTL_SECONDS = 24 * 3600;

export const EnrollmentCreateKeyInput = z
  .strictObject({
    reusable: z.boolean().optional(),
    expiresInSeconds: z
      .number()
      .int()
      .min(60)
      .max(365 * 24 * 3600)
      .optional(),
    labels: Labels.optional(),
  })
  .optional();
export const EnrollmentCreateKeyOutput = z.object({
  keyId: z.uuid(),
  enrollmentKey: TokenString,
  expiresAt: Timestamp,
});

export const EnrollmentKeyView = z.object({
  keyId: z.uuid(),
  reusable: z.boolean(),
  labels: Labels,
  createdAt: Timestamp,
  expiresAt: Timestamp,
  revokedAt: Timestamp.nullable(),
  useCount: z.number().int().nonnegative(),
  lastUsedAt: Timestamp.nullable(),
  state: z.enum(['active', 'spent', 'expired', 'revoked']),
});
export type EnrollmentKeyView = z.infer<typeof EnrollmentKeyView>;

export const EnrollmentListKeysInput = z.strictObject({}).optional();
export const EnrollmentListKeysOutput = z.object({ items: z.array(EnrollmentKeyView) });
export const EnrollmentRevokeKeyInput = z.strictObject({ keyId: z.uuid() });

export const DeviceEnrollInput = z.strictObject({
  enrollmentKey: TokenString,
  nodeId: NodeId.optional(),
  name: DisplayName,
  nodeType: NodeType,
  platform: Platform.optional(),
  location: Location.optional(),
  labels: Labels.optional(),
  capabilities: Capabilities.optional(),
  nodeVersion: EventEnvelopeVersion.optional(),
});
export type DeviceEnrollInput = z.infer<typeof DeviceEnrollInput>;

export const DeviceEnrollOutput = z.object({
  nodeId: NodeId,
  nodeToken: TokenString,
  ownerParticipantId: ParticipantId,
});

/** At most this many node identities per `device.enrollBatch` call. */
export const DEVICE_ENROLL_BATCH_MAX = 500;

/** One node of a batch: `device.enroll`'s fields without the key. */
export const DeviceEnrollBatchNode = DeviceEnrollInput.omit({ enrollmentKey: true });
export type DeviceEnrollBatchNode = z.infer<typeof DeviceEnrollBatchNode>;

/**
 * `device.enrollBatch`: a fleet (simulated, or provisioned in bulk) enrolled with one reusable
 * key in one call — all the nodes or none. One public call, however many nodes.
 */
export const DeviceEnrollBatchInput = z.strictObject({
  enrollmentKey: TokenString,
  nodes: z.array(DeviceEnrollBatchNode).min(1).max(DEVICE_ENROLL_BATCH_MAX),
});
export type DeviceEnrollBatchInput = z.infer<typeof DeviceEnrollBatchInput>;

/** In the order of the input's `nodes`. */
export const DeviceEnrollBatchOutput = z.object({ nodes: z.array(DeviceEnrollOutput) });
