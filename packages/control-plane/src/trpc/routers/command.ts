import {
  CommandCancelInput,
  CommandDenyInput,
  CommandIdInput,
  CommandInvokeInput,
  CommandInvokeOutput,
  CommandListInput,
  CommandListOutput,
  CommandView,
  CommandWatchEvent,
  CommandWatchInput,
} from '@tether/contracts';
import { tracked } from '@trpc/server';
import * as queries from '../../commands/queries.js';
import * as commands from '../../commands/service.js';
import { router } from '../init.js';
import { participantProcedure, streamSignal } from '../procedures.js';
import { rest } from '../rest-meta.js';

export const commandRouter = router({
  invoke: participantProcedure
    .meta(
      rest(
        'POST',
        '/commands',
        'commands',
        'Invoke a capability on a node (by node id, or by capability: the least recently commanded eligible node)',
      ),
    )
    .input(CommandInvokeInput)
    .output(CommandInvokeOutput)
    .mutation(({ ctx, input }) =>
      commands.invoke(ctx.deps.db, ctx.deps.commands, ctx.principal, input),
    ),
  get: participantProcedure
    .meta(rest('GET', '/commands/{commandId}', 'commands', 'Get a command: state, result'))
    .input(CommandIdInput)
    .output(CommandView)
    .query(({ ctx, input }) => queries.getCommand(ctx.deps.db, ctx.principal, input.commandId)),
  list: participantProcedure
    .meta(rest('GET', '/commands', 'commands', 'List the commands you may see, newest first'))
    .input(CommandListInput)
    .output(CommandListOutput)
    .query(({ ctx, input }) => queries.listCommands(ctx.deps.db, ctx.principal, input)),
  cancel: participantProcedure
    .meta(rest('POST', '/commands/{commandId}/cancel', 'commands', 'Cancel an open command'))
    .input(CommandCancelInput)
    .output(CommandView)
    .mutation(({ ctx, input }) =>
      commands.cancelCommand(ctx.deps.db, ctx.deps.commands, ctx.principal, input),
    ),
  approve: participantProcedure
    .meta(
      rest(
        'POST',
        '/commands/{commandId}/approve',
        'commands',
        'Approve a command awaiting approval (gated capability; node owner or admin)',
      ),
    )
    .input(CommandIdInput)
    .output(CommandView)
    .mutation(({ ctx, input }) =>
      commands.approveCommand(ctx.deps.db, ctx.deps.commands, ctx.principal, input),
    ),
  deny: participantProcedure
    .meta(
      rest(
        'POST',
        '/commands/{commandId}/deny',
        'commands',
        'Deny a command awaiting approval (gated capability; node owner or admin)',
      ),
    )
    .input(CommandDenyInput)
    .output(CommandView)
    .mutation(({ ctx, input }) =>
      commands.denyCommand(ctx.deps.db, ctx.deps.commands, ctx.principal, input),
    ),
  /**
   * The command now, then after each transition, until it ends (WebSocket or SSE).
   * `tracked(revision, …)`: a client that reconnects resumes after the last update it got.
   */
  watch: participantProcedure
    .input(CommandWatchInput)
    .meta({ eventOutput: CommandWatchEvent })
    .subscription(async function* ({ ctx, input, signal }) {
      const until = streamSignal(ctx, signal) ?? new AbortController().signal;
      for await (const update of queries.watchCommand(
        ctx.deps.db,
        ctx.deps.commands,
        ctx.principal,
        input,
        until,
        ctx.transport,
      )) {
        yield tracked(String(update.revision), update.command);
      }
    }),
});
