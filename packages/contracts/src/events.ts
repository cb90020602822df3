/**
 * The fleet event feed: durable, ordered state changes (never one per heartbeat).
 *
 * Every event type has exactly one payload schema (`FleetEventPayloads`), and every writer builds
 * its payload through `fleetEvent(type, data)`, which checks it against that schema, so what the
 * feed carries is what the contract says. Payloads are outputs: open objects (a consumer must
 * ignore fields it does not know), so adding a payload field is additive and renaming or
 * removing one is breaking, as the snapshot classifier reports.
 */
import { z } from 'zod';
import { CapabilityName } from './capabilities.js';
import { AttachmentId, CommandId, NodeId, ParticipantId } from './ids.js';
import { CapabilityPolicy } from './schemas/access-policy.js';
import { CommandState, AttachmentState, PresenceHealthState } from './states.js';
import { EventEnvelopeVersion } from './version.js';

/** Why presence changed. */
export const PresenceCause = z.enum([
  'heartbeat',
  'sweep',
  'connection',
  'attach',
  'detach',
  'revoke',
]);
export type PresenceCause = z.infer<typeof PresenceCause>;

const RequestId = z.uuid();
const Reason = z.string().nullable();

/** A participant acting on a node identity. */
export const ParticipantActor = z.object({
  kind: z.literal('participant'),
  participantId: ParticipantId,
});
/** The node itself, acting with its own credential. */
export const NodeActor = z.object({ kind: z.literal('node'), nodeId: NodeId });
/** Who changed a node identity. */
export const NodeChangeActor = z.discriminatedUnion('kind', [ParticipantActor, NodeActor]);
export type NodeChangeActor = z.infer<typeof NodeChangeActor>;

const EnrolledNode = {
  ownerParticipantId: ParticipantId,
  name: z.string(),
  nodeType: z.string(),
};

/** `node.enrolled`: a node identity exists (listed offline until it beats), by key or pairing. */
export const NodeEnrolledPayload = z.discriminatedUnion('via', [
  z.object({ via: z.literal('enrollment_key'), keyId: z.uuid(), ...EnrolledNode }),
  z.object({ via: z.literal('pairing'), requestId: RequestId, ...EnrolledNode }),
]);
export type NodeEnrolledPayload = z.infer<typeof NodeEnrolledPayload>;

/** The node fields a `node.updated` event can name (`token`: the credential was set or rotated). */
export const NodeUpdatedField = z.enum(['name', 'location', 'labels', 'metadata', 'token']);
export type NodeUpdatedField = z.infer<typeof NodeUpdatedField>;

/**
 * `node.updated`: the fields whose value changed. A credential set by `pairing.claim` carries
 * `via: 'pairing.claim'` and the request id.
 */
export const NodeUpdatedPayload = z.object({
  changed: z.array(NodeUpdatedField).min(1),
  by: NodeChangeActor,
  via: z.literal('pairing.claim').optional(),
  requestId: RequestId.optional(),
});
export type NodeUpdatedPayload = z.infer<typeof NodeUpdatedPayload>;

/** `node.revoked`: the identity is revoked for good, with how many attachments it took along. */
export const NodeRevokedPayload = z.object({
  by: ParticipantActor,
  attachmentsRevoked: z.number().int().nonnegative(),
});
export type NodeRevokedPayload = z.infer<typeof NodeRevokedPayload>;

/** `presence.changed`: the node's presence health moved `from` → `to` (never from = to). */
export const PresenceChangedPayload = z.object({
  from: PresenceHealthState,
  to: PresenceHealthState,
  cause: PresenceCause,
});
export type PresenceChangedPayload = z.infer<typeof PresenceChangedPayload>;

/** `runtimenode.attached`: an attachment was created or reactivated (`previousState` null: created). */
export const RuntimeNodeAttachedPayload = z.object({
  attachmentId: AttachmentId,
  state: AttachmentState,
  previousState: AttachmentState.nullable(),
  readOnly: z.boolean(),
  nodeVersion: EventEnvelopeVersion,
});
export type RuntimeNodeAttachedPayload = z.infer<typeof RuntimeNodeAttachedPayload>;

/**
 * `runtimenode.detached`: the active attachment went offline. `by` says who ended it: the node
 * itself (`runtimenode.detach`, or a newer attach of the node that superseded a stale
 * attachment: `reason: 'superseded'` with `supersededBy`), or its owner or an admin
 * (`node.detach`). `attachmentId`, `by` and `supersededBy` are absent from events written
 * before they existed.
 */
export const RuntimeNodeDetachedPayload = z.object({
  previousState: AttachmentState,
  reason: Reason,
  attachmentId: AttachmentId.optional(),
  by: NodeChangeActor.optional(),
  supersededBy: AttachmentId.optional(),
});
export type RuntimeNodeDetachedPayload = z.infer<typeof RuntimeNodeDetachedPayload>;

/** `runtimenode.state_changed`: a capability update's health change moved the attachment. */
export const RuntimeNodeStateChangedPayload = z.object({
  from: AttachmentState,
  to: AttachmentState,
  reason: Reason,
});
export type RuntimeNodeStateChangedPayload = z.infer<typeof RuntimeNodeStateChangedPayload>;

/** `runtimenode.capabilities_updated`: the declared capability names, sorted. */
export const RuntimeNodeCapabilitiesUpdatedPayload = z.object({
  capabilities: z.array(CapabilityName),
});
export type RuntimeNodeCapabilitiesUpdatedPayload = z.infer<
  typeof RuntimeNodeCapabilitiesUpdatedPayload
>;

/** `runtimenode.revoked`: one attachment revoked for good (`reason: 'node_revoked'` by node.revoke). */
export const RuntimeNodeRevokedPayload = z.object({
  previousState: AttachmentState,
  reason: Reason,
  by: ParticipantId,
});
export type RuntimeNodeRevokedPayload = z.infer<typeof RuntimeNodeRevokedPayload>;

/**
 * `session.floor_raised`: the session's minimum node version. `from` is the previous floor as
 * it was stored (null: there was none; a malformed stored floor is shown as it was).
 */
export const SessionFloorRaisedPayload = z.object({
  from: z.string().nullable(),
  to: EventEnvelopeVersion,
  by: ParticipantId,
});
export type SessionFloorRaisedPayload = z.infer<typeof SessionFloorRaisedPayload>;

/** `pairing.requested`: a new pending request, or a re-sent one refreshed (`refreshed: true`). */
export const PairingRequestedPayload = z.object({
  requestId: RequestId,
  pairingCode: z.string(),
  name: z.string(),
  nodeType: z.string(),
  requestedNodeId: NodeId.nullable(),
  refreshed: z.boolean(),
});
export type PairingRequestedPayload = z.infer<typeof PairingRequestedPayload>;

/** `pairing.approved` / `pairing.rejected`: who decided. */
export const PairingDecidedPayload = z.object({
  requestId: RequestId,
  decidedBy: ParticipantId,
});
export type PairingDecidedPayload = z.infer<typeof PairingDecidedPayload>;

/** `pairing.expired`: a pending request passed its expiry undecided. */
export const PairingExpiredPayload = z.object({
  requestId: RequestId,
  requestedNodeId: NodeId.nullable(),
});
export type PairingExpiredPayload = z.infer<typeof PairingExpiredPayload>;

/** `policy.changed`: a capability's access policy moved `from` → `to` (never from = to). */
export const PolicyChangedPayload = z.object({
  capability: CapabilityName,
  from: CapabilityPolicy,
  to: CapabilityPolicy,
  by: ParticipantId,
});
export type PolicyChangedPayload = z.infer<typeof PolicyChangedPayload>;

/** A point in time inside an event payload (payloads are JSON): ISO-8601 with offset. */
const PayloadTime = z.iso.datetime({ offset: true });

const LeaseFields = {
  leaseId: z.uuid(),
  capability: CapabilityName,
  holder: ParticipantId,
};

/** `lease.granted` / `lease.renewed`: the lease is held by `holder` until `expiresAt`. */
export const LeaseHeldPayload = z.object({ ...LeaseFields, expiresAt: PayloadTime });
export type LeaseHeldPayload = z.infer<typeof LeaseHeldPayload>;

/** `lease.released`: ended by its holder, or broken (`broken: true`) by the owner or an admin. */
export const LeaseReleasedPayload = z.object({
  ...LeaseFields,
  by: ParticipantId,
  broken: z.boolean(),
});
export type LeaseReleasedPayload = z.infer<typeof LeaseReleasedPayload>;

/** `lease.expired`: the lease passed its expiry without a renewal. */
export const LeaseExpiredPayload = z.object({ ...LeaseFields, expiredAt: PayloadTime });
export type LeaseExpiredPayload = z.infer<typeof LeaseExpiredPayload>;
/** The server itself moved a command (delivery to the node, or expiry by the sweep). */
export const SystemActor = z.object({
  kind: z.literal('system'),
  cause: z.enum(['delivery', 'sweep']),
});
/** Who moved a command: a participant, the addressed node, or the server. */
export const CommandActor = z.discriminatedUnion('kind', [
  ParticipantActor,
  NodeActor,
  SystemActor,
]);
export type CommandActor = z.infer<typeof CommandActor>;

/** How the access policy let an invocation through (`gate`: it waits for an owner's approval). */
export const CommandDecision = z.discriminatedUnion('outcome', [
  z.object({
    outcome: z.literal('allow'),
    policy: CapabilityPolicy,
    via: z.enum(['owner', 'admin', 'member', 'lease']),
  }),
  z.object({ outcome: z.literal('gate'), policy: z.literal('gated') }),
]);
export type CommandDecision = z.infer<typeof CommandDecision>;

/**
 * `command.invoked`: a command was stored (`state` `pending`, or `awaiting_approval` when the
 * capability is gated), by whom, through which policy decision, and how its node was chosen.
 * The input itself is not in the feed (read it with `command.get`).
 */
export const CommandInvokedPayload = z.object({
  commandId: CommandId,
  capability: CapabilityName,
  command: z.string().nullable(),
  state: CommandState,
  by: ParticipantId,
  decision: CommandDecision,
  targetedBy: z.enum(['node', 'capability']),
  expiresAt: z.iso.datetime({ offset: true }),
});
export type CommandInvokedPayload = z.infer<typeof CommandInvokedPayload>;

/** `command.refused`: the access policy refused an invocation on this node (nothing was stored). */
export const CommandRefusedPayload = z.object({
  capability: CapabilityName,
  command: z.string().nullable(),
  by: ParticipantId,
  policy: CapabilityPolicy,
  reason: z.enum(['not_owner', 'not_member', 'lease_required', 'lease_held_by_other']),
});
export type CommandRefusedPayload = z.infer<typeof CommandRefusedPayload>;

/**
 * `command.state_changed`: one transition of a command, `from` → `to`, by whom. `attempt` is the
 * delivery count when `to` is `delivered`; `reason` is a cancel/deny reason or a failure's code.
 */
export const CommandStateChangedPayload = z.object({
  commandId: CommandId,
  capability: CapabilityName,
  from: CommandState,
  to: CommandState,
  by: CommandActor,
  attempt: z.number().int().positive().optional(),
  reason: Reason.optional(),
});
export type CommandStateChangedPayload = z.infer<typeof CommandStateChangedPayload>;

export const FleetEventType = z.enum([
  'node.enrolled',
  'node.updated',
  'node.revoked',
  'presence.changed',
  'runtimenode.attached',
  'runtimenode.detached',
  'runtimenode.state_changed',
  'runtimenode.capabilities_updated',
  'runtimenode.revoked',
  'session.floor_raised',
  'pairing.requested',
  'pairing.approved',
  'pairing.rejected',
  'pairing.expired',
  'policy.changed',
  'lease.granted',
  'lease.renewed',
  'lease.released',
  'lease.expired',
  'command.invoked',
  'command.refused',
  'command.state_changed',
]);
export type FleetEventType = z.infer<typeof FleetEventType>;

/** Every event type and the schema of its `data`, in the order the API reference lists them. */
export const FleetEventPayloads = {
  'node.enrolled': NodeEnrolledPayload,
  'node.updated': NodeUpdatedPayload,
  'node.revoked': NodeRevokedPayload,
  'presence.changed': PresenceChangedPayload,
  'runtimenode.attached': RuntimeNodeAttachedPayload,
  'runtimenode.detached': RuntimeNodeDetachedPayload,
  'runtimenode.state_changed': RuntimeNodeStateChangedPayload,
  'runtimenode.capabilities_updated': RuntimeNodeCapabilitiesUpdatedPayload,
  'runtimenode.revoked': RuntimeNodeRevokedPayload,
  'session.floor_raised': SessionFloorRaisedPayload,
  'pairing.requested': PairingRequestedPayload,
  'pairing.approved': PairingDecidedPayload,
  'pairing.rejected': PairingDecidedPayload,
  'pairing.expired': PairingExpiredPayload,
  'policy.changed': PolicyChangedPayload,
  'lease.granted': LeaseHeldPayload,
  'lease.renewed': LeaseHeldPayload,
  'lease.released': LeaseReleasedPayload,
  'lease.expired': LeaseExpiredPayload,
  'command.invoked': CommandInvokedPayload,
  'command.refused': CommandRefusedPayload,
  'command.state_changed': CommandStateChangedPayload,
} as const satisfies Record<FleetEventType, z.ZodType>;

/** The `data` of each event type. */
export type FleetEventPayloads = {
  [T in FleetEventType]: z.infer<(typeof FleetEventPayloads)[T]>;
};
export type FleetEventPayload<T extends FleetEventType> = FleetEventPayloads[T];

declare const builtByFleetEvent: unique symbol;

/** An event's type and payload, checked against the contract by `fleetEvent`. */
export type TypedFleetEvent<T extends FleetEventType = FleetEventType> = {
  [K in T]: {
    readonly type: K;
    readonly data: FleetEventPayloads[K];
    readonly [builtByFleetEvent]: true;
  };
}[T];

/**
 * The one way to build an event payload: typed by `type` and checked against its schema at run
 * time too (a payload assembled from database rows is not checked by the compiler). Throws when
 * the payload does not match; keys the schema does not know are dropped.
 */
export function fleetEvent<T extends FleetEventType>(
  type: T,
  data: FleetEventPayloads[T],
): TypedFleetEvent<T> {
  const schema: z.ZodType = FleetEventPayloads[type];
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new Error(
      `fleet event ${type}: payload does not match the contract: ${z.prettifyError(parsed.error)}`,
    );
  }
  return { type, data: parsed.data } as unknown as TypedFleetEvent<T>;
}
