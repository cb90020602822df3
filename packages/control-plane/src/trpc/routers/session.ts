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
import { rest } from '../rest-meta.js';
import { participantProcedure } from '../procedures.js';

export const sessionRouter = router({
  create: participantProcedure
    .meta(rest('POST', '/sessions', 'sessions', 'Create a session (you become its owner)'))
    .input(SessionCreateInput)
    .output(SessionView)
    .mutation(({ ctx, input }) => sessions.createSession(ctx.deps.db, ctx.principal, input)),
  get: participantProcedure
    .meta(rest('GET', '/sessions/{sessionId}', 'sessions', 'Get a session'))
    .input(SessionIdInput)
    .output(SessionView)
    .query(({ ctx, input }) => sessions.getSession(ctx.deps.db, ctx.principal, input.sessionId)),
  list: participantProcedure
    .meta(rest('GET', '/sessions', 'sessions', 'List the sessions you belong to'))
    .input(SessionListInput)
    .output(SessionListOutput)
    .query(({ ctx, input }) => sessions.listSessions(ctx.deps.db, ctx.principal, input ?? {})),
  raiseFloor: participantProcedure
    .meta(
      rest(
        'POST',
        '/sessions/{sessionId}/raise-floor',
        'sessions',
        'Raise the minimum node version (floors only rise)',
      ),
    )
    .input(SessionRaiseFloorInput)
    .output(SessionView)
    .mutation(({ ctx, input }) => sessions.raiseFloor(ctx.deps.db, ctx.principal, input)),
});

export const membershipRouter = router({
  add: participantProcedure
    .meta(rest('POST', '/sessions/{sessionId}/members', 'memberships', 'Add a member to a session'))
    .input(MembershipAddInput)
    .output(MembershipView)
    .mutation(({ ctx, input }) => sessions.addMember(ctx.deps.db, ctx.principal, input)),
  update: participantProcedure
    .meta(
      rest(
        'PATCH',
        '/sessions/{sessionId}/members/{participantId}',
        'memberships',
        "Change a member's role or state",
      ),
    )
    .input(MembershipUpdateInput)
    .output(MembershipView)
    .mutation(({ ctx, input }) => sessions.updateMember(ctx.deps.db, ctx.principal, input)),
  remove: participantProcedure
    .meta(
      rest(
        'DELETE',
        '/sessions/{sessionId}/members/{participantId}',
        'memberships',
        'Remove a member from a session',
      ),
    )
    .input(MembershipRemoveInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) => sessions.removeMember(ctx.deps.db, ctx.principal, input)),
  list: participantProcedure
    .meta(
      rest('GET', '/sessions/{sessionId}/members', 'memberships', 'List the members of a session'),
    )
    .input(SessionIdInput)
    .output(MembershipListOutput)
    .query(({ ctx, input }) => sessions.listMembers(ctx.deps.db, ctx.principal, input.sessionId)),
});
