import {
  FindOnlineWithCapabilityInput,
  FindOnlineWithCapabilityOutput,
  NodeIdInput,
  NodeIsOnlineOutput,
  NodeListInput,
  NodeListOutput,
  NodeMetricsInput,
  NodeMetricsOutput,
  NodeRotateTokenInput,
  NodeRotateTokenOutput,
  NodeUpdateInput,
  NodeView,
  NullOutput,
} from '@tether/contracts';
import * as queries from '../../nodes/queries.js';
import * as nodes from '../../nodes/service.js';
import { router } from '../init.js';
import { nodeProcedure, participantProcedure } from '../procedures.js';

export const nodeRouter = router({
  get: participantProcedure
    .input(NodeIdInput)
    .output(NodeView)
    .query(({ ctx, input }) => queries.getNode(ctx.deps.db, ctx.principal, input.nodeId)),
  list: participantProcedure
    .input(NodeListInput)
    .output(NodeListOutput)
    .query(({ ctx, input }) => queries.listNodes(ctx.deps.db, ctx.principal, input)),
  isOnline: participantProcedure
    .input(NodeIdInput)
    .output(NodeIsOnlineOutput)
    .query(({ ctx, input }) => queries.isNodeOnline(ctx.deps.db, ctx.principal, input.nodeId)),
  findOnlineWithCapability: participantProcedure
    .input(FindOnlineWithCapabilityInput)
    .output(FindOnlineWithCapabilityOutput)
    .query(({ ctx, input }) => queries.findOnlineWithCapability(ctx.deps.db, ctx.principal, input)),
  metrics: participantProcedure
    .input(NodeMetricsInput)
    .output(NodeMetricsOutput)
    .query(({ ctx, input }) =>
      queries.getNodeMetrics(ctx.deps.db, ctx.principal, input, ctx.deps.settings.metricsHistory),
    ),
  update: participantProcedure
    .input(NodeUpdateInput)
    .output(NodeView)
    .mutation(({ ctx, input }) => nodes.updateNode(ctx.deps.db, ctx.principal, input)),
  revoke: participantProcedure
    .input(NodeIdInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) =>
      nodes.revokeNode(ctx.deps.db, ctx.principal, input, ctx.deps.revocations),
    ),
  rotateToken: nodeProcedure
    .input(NodeRotateTokenInput)
    .output(NodeRotateTokenOutput)
    .mutation(({ ctx }) => nodes.rotateNodeToken(ctx.deps.db, ctx.principal, ctx.deps.revocations)),
});
