/**
 * Every wire schema by procedure: the source of the JSON Schema snapshots and of the
 * compatibility check. Add a procedure here when it is added to the API.
 */
import type { z } from 'zod';
import * as ap from './schemas/access-policy.js';
import * as cm from './schemas/commands.js';
import * as en from './schemas/enrollment.js';
import * as fl from './schemas/fleet.js';
import * as no from './schemas/nodes.js';
import * as pa from './schemas/pairing.js';
import * as pt from './schemas/participants.js';
import * as rn from './schemas/runtimenode.js';
import * as s from './schemas/sessions.js';
import * as sy from './schemas/system.js';

export interface WireProcedure {
  readonly kind: 'query' | 'mutation' | 'subscription';
  readonly input: z.ZodType;
  readonly output: z.ZodType;
}

export const WIRE_PROCEDURES = {
  'system.info': { kind: 'query', input: sy.SystemInfoInput, output: sy.SystemInfoOutput },

  'participant.create': {
    kind: 'mutation',
    input: pt.ParticipantCreateInput,
    output: pt.ParticipantCreateOutput,
  },
  'participant.list': {
    kind: 'query',
    input: pt.ParticipantListInput,
    output: pt.ParticipantListOutput,
  },
  'participant.suspend': {
    kind: 'mutation',
    input: pt.ParticipantIdInput,
    output: pt.ParticipantView,
  },
  'participant.resume': {
    kind: 'mutation',
    input: pt.ParticipantIdInput,
    output: pt.ParticipantView,
  },
  'token.create': { kind: 'mutation', input: pt.TokenCreateInput, output: pt.TokenCreateOutput },
  'token.revoke': { kind: 'mutation', input: pt.TokenRevokeInput, output: pt.NullOutput },
  'token.list': { kind: 'query', input: pt.TokenListInput, output: pt.TokenListOutput },

  'session.create': { kind: 'mutation', input: s.SessionCreateInput, output: s.SessionView },
  'session.get': { kind: 'query', input: s.SessionIdInput, output: s.SessionView },
  'session.list': { kind: 'query', input: s.SessionListInput, output: s.SessionListOutput },
  'session.raiseFloor': {
    kind: 'mutation',
    input: s.SessionRaiseFloorInput,
    output: s.SessionView,
  },
  'membership.add': { kind: 'mutation', input: s.MembershipAddInput, output: s.MembershipView },
  'membership.update': {
    kind: 'mutation',
    input: s.MembershipUpdateInput,
    output: s.MembershipView,
  },
  'membership.remove': { kind: 'mutation', input: s.MembershipRemoveInput, output: pt.NullOutput },
  'membership.list': { kind: 'query', input: s.SessionIdInput, output: s.MembershipListOutput },

  'enrollment.createKey': {
    kind: 'mutation',
    input: en.EnrollmentCreateKeyInput,
    output: en.EnrollmentCreateKeyOutput,
  },
  'enrollment.listKeys': {
    kind: 'query',
    input: en.EnrollmentListKeysInput,
    output: en.EnrollmentListKeysOutput,
  },
  'enrollment.revokeKey': {
    kind: 'mutation',
    input: en.EnrollmentRevokeKeyInput,
    output: pt.NullOutput,
  },
  'device.enroll': { kind: 'mutation', input: en.DeviceEnrollInput, output: en.DeviceEnrollOutput },
  'device.enrollBatch': {
    kind: 'mutation',
    input: en.DeviceEnrollBatchInput,
    output: en.DeviceEnrollBatchOutput,
  },

  'pairing.request': {
    kind: 'mutation',
    input: pa.PairingRequestInput,
    output: pa.PairingRequestOutput,
  },
  'pairing.list': { kind: 'query', input: pa.PairingListInput, output: pa.PairingListOutput },
  'pairing.approve': {
    kind: 'mutation',
    input: pa.PairingDecisionInput,
    output: pa.PairingDecisionOutput,
  },
  'pairing.reject': {
    kind: 'mutation',
    input: pa.PairingDecisionInput,
    output: pa.PairingDecisionOutput,
  },
  'pairing.claim': { kind: 'mutation', input: pa.PairingClaimInput, output: pa.PairingClaimOutput },

  'node.get': { kind: 'query', input: no.NodeIdInput, output: no.NodeView },
  'node.list': { kind: 'query', input: no.NodeListInput, output: no.NodeListOutput },
  'node.counts': { kind: 'query', input: no.NodeCountsInput, output: no.NodeCountsOutput },
  'node.isOnline': { kind: 'query', input: no.NodeIdInput, output: no.NodeIsOnlineOutput },
  'node.findOnlineWithCapability': {
    kind: 'query',
    input: no.FindOnlineWithCapabilityInput,
    output: no.FindOnlineWithCapabilityOutput,
  },
  'node.metrics': { kind: 'query', input: no.NodeMetricsInput, output: no.NodeMetricsOutput },
  'node.update': { kind: 'mutation', input: no.NodeUpdateInput, output: no.NodeView },
  'node.revoke': { kind: 'mutation', input: no.NodeIdInput, output: pt.NullOutput },
  'node.detach': { kind: 'mutation', input: rn.DetachNodeInput, output: pt.NullOutput },
  'node.reissueToken': {
    kind: 'mutation',
    input: no.NodeIdInput,
    output: no.NodeRotateTokenOutput,
  },
  'node.rotateToken': {
    kind: 'mutation',
    input: no.NodeRotateTokenInput,
    output: no.NodeRotateTokenOutput,
  },

  'runtimenode.attach': { kind: 'mutation', input: rn.AttachInput, output: rn.AttachOutput },
  'runtimenode.heartbeat': {
    kind: 'mutation',
    input: rn.HeartbeatInput,
    output: rn.HeartbeatOutput,
  },
  'runtimenode.capabilityupdate': {
    kind: 'mutation',
    input: rn.CapabilityUpdateInput,
    output: rn.CapabilityUpdateOutput,
  },
  'runtimenode.detach': { kind: 'mutation', input: rn.DetachInput, output: rn.DetachOutput },
  'runtimenode.revoke': {
    kind: 'mutation',
    input: rn.RevokeAttachmentInput,
    output: pt.NullOutput,
  },
  'runtimenode.roster': { kind: 'query', input: rn.RosterInput, output: rn.RosterOutput },

  'policy.set': { kind: 'mutation', input: ap.PolicySetInput, output: ap.CapabilityPolicyView },
  'policy.get': { kind: 'query', input: ap.PolicyGetInput, output: ap.PolicyGetOutput },
  'lease.acquire': { kind: 'mutation', input: ap.LeaseAcquireInput, output: ap.LeaseView },
  'lease.renew': { kind: 'mutation', input: ap.LeaseRenewInput, output: ap.LeaseView },
  'lease.release': { kind: 'mutation', input: ap.LeaseReleaseInput, output: ap.LeaseView },
  'lease.list': { kind: 'query', input: ap.LeaseListInput, output: ap.LeaseListOutput },

  'fleet.events': { kind: 'subscription', input: fl.FleetEventsInput, output: fl.FleetEventView },
  'fleet.list': { kind: 'query', input: fl.FleetListInput, output: fl.FleetListOutput },
  'command.invoke': {
    kind: 'mutation',
    input: cm.CommandInvokeInput,
    output: cm.CommandInvokeOutput,
  },
  'command.get': { kind: 'query', input: cm.CommandIdInput, output: cm.CommandView },
  'command.list': { kind: 'query', input: cm.CommandListInput, output: cm.CommandListOutput },
  'command.cancel': { kind: 'mutation', input: cm.CommandCancelInput, output: cm.CommandView },
  'command.approve': { kind: 'mutation', input: cm.CommandIdInput, output: cm.CommandView },
  'command.deny': { kind: 'mutation', input: cm.CommandDenyInput, output: cm.CommandView },
  'command.watch': {
    kind: 'subscription',
    input: cm.CommandWatchInput,
    output: cm.CommandWatchEvent,
  },
  'runtimenode.commands': {
    kind: 'subscription',
    input: cm.NodeCommandsInput,
    output: cm.NodeCommandMessage,
  },
  'runtimenode.pendingCommands': {
    kind: 'mutation',
    input: cm.PendingCommandsInput,
    output: cm.PendingCommandsOutput,
  },
  'runtimenode.commandack': {
    kind: 'mutation',
    input: cm.CommandAckInput,
    output: cm.CommandAckOutput,
  },
  'runtimenode.commandresult': {
    kind: 'mutation',
    input: cm.CommandResultInput,
    output: cm.CommandResultOutput,
  },
} as const satisfies Record<string, WireProcedure>;

export type WireProcedureName = keyof typeof WIRE_PROCEDURES;
