import {
  DetachNodeInput,
  FindOnlineWithCapabilityInput,
  FindOnlineWithCapabilityOutput,
  NodeCountsInput,
  NodeCountsOutput,
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
import { rest } from '../rest-meta.js';
import { nodeProcedure, participantProcedure } from '../procedures.js';

export const nodeRouter = router({
  get: participantProcedure
    .meta(
      rest(
        'GET',
        '/nodes/{nodeId}',
        'nodes',
        'Get a node: identity, capabilities, presence, active attachment',
      ),
    )
    .input(NodeIdInput)
    .output(NodeView)
    .query(({ ctx, input }) => queries.getNode(ctx.deps.db, ctx.principal, input.nodeId)),
  list: participantProcedure
    .meta(rest('GET', '/nodes', 'nodes', 'List and filter the nodes you may see'))
    .input(NodeListInput)
    .output(NodeListOutput)
    .query(({ ctx, input }) => queries.listNodes(ctx.deps.db, ctx.principal, input)),
  counts: participantProcedure
    .meta(
      rest(
        'GET',
        '/node-counts',
        'nodes',
        'How many of the nodes you may see are online, degraded, offline',
      ),
    )
    .input(NodeCountsInput)
    .output(NodeCountsOutput)
    .query(({ ctx, input }) => queries.countNodes(ctx.deps.db, ctx.principal, input)),
  isOnline: participantProcedure
    .meta(rest('GET', '/nodes/{nodeId}/online', 'nodes', 'Is this node online?'))
    .input(NodeIdInput)
    .output(NodeIsOnlineOutput)
    .query(({ ctx, input }) => queries.isNodeOnline(ctx.deps.db, ctx.principal, input.nodeId)),
  findOnlineWithCapability: participantProcedure
    .meta(
      rest(
        'GET',
        '/capabilities/{capability}/online-nodes',
        'nodes',
        'The online nodes that declare a capability',
      ),
    )
    .input(FindOnlineWithCapabilityInput)
    .output(FindOnlineWithCapabilityOutput)
    .query(({ ctx, input }) => queries.findOnlineWithCapability(ctx.deps.db, ctx.principal, input)),
  metrics: participantProcedure
    .meta(rest('GET', '/nodes/{nodeId}/metrics', 'nodes', 'Recent heartbeat metrics of a node'))
    .input(NodeMetricsInput)
    .output(NodeMetricsOutput)
    .query(({ ctx, input }) =>
      queries.getNodeMetrics(ctx.deps.db, ctx.principal, input, ctx.deps.settings.metricsHistory),
    ),
  update: participantProcedure
    .meta(
      rest(
        'PATCH',
        '/nodes/{nodeId}',
        'nodes',
        "Change a node's name, location, labels or metadata",
      ),
    )
    .input(NodeUpdateInput)
    .output(NodeView)
    .mutation(({ ctx, input }) => nodes.updateNode(ctx.deps.db, ctx.principal, input)),
  revoke: participantProcedure
    .meta(rest('POST', '/nodes/{nodeId}/revoke', 'nodes', 'Revoke a node identity (terminal)'))
    .input(NodeIdInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) =>
      nodes.revokeNode(ctx.deps.db, ctx.principal, input, ctx.deps.revocations),
    ),
  detach: participantProcedure
    .meta(
      rest(
        'POST',
        '/nodes/{nodeId}/detach',
        'nodes',
        "End a node's active attachment (not terminal: the node may attach again)",
      ),
    )
    .input(DetachNodeInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) => nodes.detachNode(ctx.deps.db, ctx.principal, input)),
  reissueToken: participantProcedure
    .meta(
      rest(
        'POST',
        '/nodes/{nodeId}/reissue-token',
        'nodes',
        'Give a node a new token (owner or admin; the old one stops working)',
      ),
    )
    .input(NodeIdInput)
    .output(NodeRotateTokenOutput)
    .mutation(({ ctx, input }) =>
      nodes.reissueNodeToken(ctx.deps.db, ctx.principal, input, ctx.deps.revocations),
    ),
  rotateToken: nodeProcedure
    .meta(
      rest(
        'POST',
        '/node/rotate-token',
        'nodes',
        "Replace the calling node's token (the old one stops working)",
      ),
    )
    .input(NodeRotateTokenInput)
    .output(NodeRotateTokenOutput)
    .mutation(({ ctx }) => nodes.rotateNodeToken(ctx.deps.db, ctx.principal, ctx.deps.revocations)),
});
