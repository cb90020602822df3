/** The two state axes: the attachment lifecycle and the node's presence health. */
import { z } from 'zod';

/** Lifecycle of a runtime-node attachment to a session. */
export const AttachmentState = z.enum(['registering', 'online', 'degraded', 'offline', 'revoked']);
export type AttachmentState = z.infer<typeof AttachmentState>;

/** Attachment states that count as active (at most one per node, enforced by the database). */
export const ACTIVE_ATTACHMENT_STATES = [
  'registering',
  'online',
  'degraded',
] as const satisfies readonly AttachmentState[];

/** What a node may report about itself: never `offline` (that is the server's conclusion). */
export const RuntimeNodeHealthState = z.enum(['online', 'degraded']);
export type RuntimeNodeHealthState = z.infer<typeof RuntimeNodeHealthState>;

/** Presence health as the server sees it. */
export const PresenceHealthState = z.enum(['online', 'degraded', 'offline']);
export type PresenceHealthState = z.infer<typeof PresenceHealthState>;

export const SessionRole = z.enum(['owner', 'collaborator', 'runtime contributor', 'viewer']);
export type SessionRole = z.infer<typeof SessionRole>;

/** Roles whose holders' nodes may attach to the session. */
export const ATTACHING_ROLES = [
  'owner',
  'collaborator',
  'runtime contributor',
] as const satisfies readonly SessionRole[];

export const MembershipState = z.enum(['pending', 'active', 'suspended', 'revoked']);
export type MembershipState = z.infer<typeof MembershipState>;

export const ParticipantRole = z.enum(['admin', 'member']);
export type ParticipantRole = z.infer<typeof ParticipantRole>;

/**
 * `awaiting_approval` (gated capability, before `pending`) → `pending` (stored, not yet sent) →
 * `delivered` (sent to the node at least once) → `running` (the node acknowledged it) →
 * `succeeded` | `failed`. Any open state may end `expired` (its deadline passed) or `cancelled`;
 * `awaiting_approval` may end `denied`.
 */
export const CommandState = z.enum([
  'awaiting_approval',
  'pending',
  'delivered',
  'running',
  'succeeded',
  'failed',
  'expired',
  'cancelled',
  'denied',
]);
export type CommandState = z.infer<typeof CommandState>;
