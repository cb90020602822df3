import {
  MembershipAddInput,
  MembershipListOutput,
  MembershipRemoveInput,
  MembershipUpdateInput,
  MembershipView,
  NullOutput,
  SessionCreateInput,
  SessionIdInput,
  SessionListInput,
  SessionListOutput,
  SessionRaiseFloorInput,
  SessionView,
} from '@tether/contracts';
import * as sessions from '../../sessions/service.js';
import { router } from '../init.js';
import { participantProcedure } from '../procedures.js';

export const sessionRouter = router({
  create: participantProcedure
    .input(SessionCreateInput)
    .output(SessionView)
    .mutation(({ ctx, input }) => sessions.createSession(ctx.deps.db, ctx.principal, input)),
  get: participantProcedure
    .input(SessionIdInput)
    .output(SessionView)
    .query(({ ctx, input }) => sessions.getSession(ctx.deps.db, ctx.principal, input.sessionId)),
  list: participantProcedure
    .input(SessionListInput)
    .output(SessionListOutput)
    .query(({ ctx, input }) => sessions.listSessions(ctx.deps.db, ctx.principal, input ?? {})),
  raiseFloor: participantProcedure
    .input(SessionRaiseFloorInput)
    .output(SessionView)
    .mutation(({ ctx, input }) => sessions.raiseFloor(ctx.deps.db, ctx.principal, input)),
});

export const membershipRouter = router({
  add: participantProcedure
    .input(MembershipAddInput)
    .output(MembershipView)
    .mutation(({ ctx, input }) => sessions.addMember(ctx.deps.db, ctx.principal, input)),
  update: participantProcedure
    .input(MembershipUpdateInput)
    .output(MembershipView)
    .mutation(({ ctx, input }) => sessions.updateMember(ctx.deps.db, ctx.principal, input)),
  remove: participantProcedure
    .input(MembershipRemoveInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) => sessions.removeMember(ctx.deps.db, ctx.principal, input)),
  list: participantProcedure
    .input(SessionIdInput)
    .output(MembershipListOutput)
    .query(({ ctx, input }) => sessions.listMembers(ctx.deps.db, ctx.principal, input.sessionId)),
});
