import {
  NullOutput,
  ParticipantCreateInput,
  ParticipantCreateOutput,
  ParticipantIdInput,
  ParticipantListInput,
  ParticipantListOutput,
  ParticipantView,
  TokenCreateInput,
  TokenCreateOutput,
  TokenListInput,
  TokenListOutput,
  TokenRevokeInput,
} from '@tether/contracts';
import {
  createChildToken,
  createParticipantWithToken,
  listTokens,
  revokeParticipantToken,
} from '../../auth/service.js';
import {
  listParticipants,
  resumeParticipant,
  suspendParticipant,
} from '../../participants/service.js';
import { router } from '../init.js';
import { adminProcedure, participantProcedure } from '../procedures.js';

export const participantRouter = router({
  create: adminProcedure
    .input(ParticipantCreateInput)
    .output(ParticipantCreateOutput)
    .mutation(({ ctx, input }) =>
      createParticipantWithToken(ctx.deps.db, input, ctx.principal.tokenId),
    ),
  list: adminProcedure
    .input(ParticipantListInput)
    .output(ParticipantListOutput)
    .query(({ ctx, input }) => listParticipants(ctx.deps.db, input ?? {})),
  suspend: adminProcedure
    .input(ParticipantIdInput)
    .output(ParticipantView)
    .mutation(({ ctx, input }) =>
      suspendParticipant(ctx.deps.db, ctx.principal, input.participantId, ctx.deps.revocations),
    ),
  resume: adminProcedure
    .input(ParticipantIdInput)
    .output(ParticipantView)
    .mutation(({ ctx, input }) => resumeParticipant(ctx.deps.db, input.participantId)),
});

export const tokenRouter = router({
  create: participantProcedure
    .input(TokenCreateInput)
    .output(TokenCreateOutput)
    .mutation(({ ctx, input }) => createChildToken(ctx.deps.db, ctx.principal, input)),
  revoke: participantProcedure
    .input(TokenRevokeInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) =>
      revokeParticipantToken(ctx.deps.db, ctx.principal, input.tokenId, ctx.deps.revocations),
    ),
  list: participantProcedure
    .input(TokenListInput)
    .output(TokenListOutput)
    .query(({ ctx, input }) => listTokens(ctx.deps.db, ctx.principal, input ?? {})),
});
