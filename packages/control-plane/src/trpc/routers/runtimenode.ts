import { tracked } from '@trpc/server';
import {
  CommandAckInput,
  CommandAckOutput,
  CommandResultInput,
  CommandResultOutput,
  NodeCommandMessage,
  NodeCommandsInput,
  PendingCommandsInput,
  PendingCommandsOutput,
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
import * as delivery from '../../commands/delivery.js';
import { roster } from '../../runtime-nodes/roster.js';
import * as runtimeNodes from '../../runtime-nodes/service.js';
import type { Context } from '../context.js';
import { router } from '../init.js';
import { rest } from '../rest-meta.js';
import {
  heartbeatLimitedNodeProcedure,
  nodeProcedure,
  participantProcedure,
  streamSignal,
} from '../procedures.js';

/** Calls over a WebSocket carry its connection id (presence binding); HTTP calls carry none. */
function wsOrigin(ctx: Context): runtimeNodes.CallOrigin {
  return { connectionId: ctx.transport === 'ws' ? ctx.connectionId : null };
}

export const runtimenodeRouter = router({
  attach: nodeProcedure
    .meta(
      rest(
        'POST',
        '/runtime-nodes/attach',
        'runtime-nodes',
        'Attach the calling node to a session',
      ),
    )
    .input(AttachInput)
    .output(AttachOutput)
    .mutation(({ ctx, input }) => {
      const origin = wsOrigin(ctx);
      // Another open connection of this node here: a second copy runs (its attachment is live).
      const otherConnection =
        ctx.deps.nodeConnections?.hasOtherConnection(
          ctx.principal.nodeId,
          origin.connectionId ?? null,
        ) ?? false;
      return runtimeNodes.attach(ctx.deps.db, ctx.principal, input, {
        ...origin,
        otherConnection,
      });
    }),
  heartbeat: heartbeatLimitedNodeProcedure
    .meta(
      rest(
        'POST',
        '/runtime-nodes/heartbeat',
        'runtime-nodes',
        'Heartbeat: the node is alive (and its health and metrics)',
      ),
    )
    .input(HeartbeatInput)
    .output(HeartbeatOutput)
    .mutation(({ ctx, input }) =>
      runtimeNodes.heartbeat(ctx.deps.db, ctx.principal, input, wsOrigin(ctx), ctx.deps.heartbeats),
    ),
  capabilityupdate: nodeProcedure
    .meta(
      rest(
        'POST',
        '/runtime-nodes/capabilities',
        'runtime-nodes',
        'Declare the full capability set (and optionally go online or degraded)',
      ),
    )
    .input(CapabilityUpdateInput)
    .output(CapabilityUpdateOutput)
    .mutation(({ ctx, input }) => runtimeNodes.capabilityUpdate(ctx.deps.db, ctx.principal, input)),
  detach: nodeProcedure
    .meta(
      rest(
        'POST',
        '/runtime-nodes/detach',
        'runtime-nodes',
        'Detach the calling node from its session',
      ),
    )
    .input(DetachInput)
    .output(DetachOutput)
    .mutation(({ ctx, input }) => runtimeNodes.detach(ctx.deps.db, ctx.principal, input)),
  revoke: participantProcedure
    .meta(
      rest(
        'POST',
        '/sessions/{sessionId}/nodes/{nodeId}/revoke',
        'runtime-nodes',
        "Revoke a node's attachment to a session (terminal for that session)",
      ),
    )
    .input(RevokeAttachmentInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) => runtimeNodes.revokeAttachment(ctx.deps.db, ctx.principal, input)),
  roster: participantProcedure
    .meta(
      rest(
        'GET',
        '/sessions/{sessionId}/roster',
        'runtime-nodes',
        'Every attachment of a session with its presence',
      ),
    )
    .input(RosterInput)
    .output(RosterOutput)
    .query(({ ctx, input }) => roster(ctx.deps.db, ctx.principal, input)),

  /**
   * The calling node's commands (WebSocket or SSE): every open one first (again after any
   * reconnect: at least once, the node deduplicates by commandId), then each new one, and a
   * `cancel` for a sent command that was cancelled or expired.
   */
  commands: nodeProcedure
    .input(NodeCommandsInput)
    .meta({ eventOutput: NodeCommandMessage })
    .subscription(async function* ({ ctx, input, signal }) {
      // `tracked`: an id per message (the command, or its cancel) as every Tether stream has. A
      // resubscription gets every open command again whatever `lastEventId` it sends.
      for await (const message of delivery.streamCommands(
        ctx.deps.db,
        ctx.deps.commands,
        ctx.principal,
        input,
        streamSignal(ctx, signal) ?? new AbortController().signal,
        ctx.transport,
      )) {
        const id =
          message.kind === 'command' ? message.command.commandId : `${message.commandId}:cancel`;
        yield tracked(id, message);
      }
    }),
  pendingCommands: nodeProcedure
    .meta(
      rest(
        'POST',
        '/runtime-nodes/commands/pending',
        'runtime-nodes',
        "Poll the calling node's open commands (marks them delivered; for nodes without WebSocket)",
      ),
    )
    .input(PendingCommandsInput)
    .output(PendingCommandsOutput)
    .mutation(({ ctx, input }) => delivery.pendingCommands(ctx.deps.db, ctx.principal, input)),
  commandack: nodeProcedure
    .meta(
      rest(
        'POST',
        '/runtime-nodes/commands/{commandId}/ack',
        'runtime-nodes',
        'Acknowledge a command: the node started it (running)',
      ),
    )
    .input(CommandAckInput)
    .output(CommandAckOutput)
    .mutation(({ ctx, input }) =>
      delivery.ackCommand(ctx.deps.db, ctx.deps.commands, ctx.principal, input),
    ),
  commandresult: nodeProcedure
    .meta(
      rest(
        'POST',
        '/runtime-nodes/commands/{commandId}/result',
        'runtime-nodes',
        "Report a command's result (succeeded with output, or failed with an error)",
      ),
    )
    .input(CommandResultInput)
    .output(CommandResultOutput)
    .mutation(({ ctx, input }) =>
      delivery.commandResult(ctx.deps.db, ctx.deps.commands, ctx.principal, input),
    ),
});
