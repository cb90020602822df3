import {
  AttachInput,
  AttachOutput,
  CapabilityUpdateInput,
  CapabilityUpdateOutput,
  DetachInput,
  DetachOutput,
  HeartbeatInput,
  HeartbeatOutput,
  NullOutput,
  RevokeAttachmentInput,
  RosterInput,
  RosterOutput,
} from '@tether/contracts';
import * as runtimeNodes from '../../runtime-nodes/service.js';
import type { Context } from '../context.js';
import { router } from '../init.js';
import {
  heartbeatLimitedNodeProcedure,
  nodeProcedure,
  participantProcedure,
} from '../procedures.js';

/** Calls over a WebSocket carry its connection id (presence binding); HTTP calls carry none. */
function wsOrigin(ctx: Context): runtimeNodes.CallOrigin {
  return { connectionId: ctx.transport === 'ws' ? ctx.connectionId : null };
}

export const runtimenodeRouter = router({
  attach: nodeProcedure
    .input(AttachInput)
    .output(AttachOutput)
    .mutation(({ ctx, input }) =>
      runtimeNodes.attach(ctx.deps.db, ctx.principal, input, wsOrigin(ctx)),
    ),
  heartbeat: heartbeatLimitedNodeProcedure
    .input(HeartbeatInput)
    .output(HeartbeatOutput)
    .mutation(({ ctx, input }) =>
      runtimeNodes.heartbeat(ctx.deps.db, ctx.principal, input, wsOrigin(ctx), ctx.deps.heartbeats),
    ),
  capabilityupdate: nodeProcedure
    .input(CapabilityUpdateInput)
    .output(CapabilityUpdateOutput)
    .mutation(({ ctx, input }) => runtimeNodes.capabilityUpdate(ctx.deps.db, ctx.principal, input)),
  detach: nodeProcedure
    .input(DetachInput)
    .output(DetachOutput)
    .mutation(({ ctx, input }) => runtimeNodes.detach(ctx.deps.db, ctx.principal, input)),
  revoke: participantProcedure
    .input(RevokeAttachmentInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) => runtimeNodes.revokeAttachment(ctx.deps.db, ctx.principal, input)),
  roster: participantProcedure
    .input(RosterInput)
    .output(RosterOutput)
    .query(({ ctx, input }) => runtimeNodes.roster(ctx.deps.db, ctx.principal, input)),
});
