import {
  NullOutput,
  ParticipantCreateInput,
  ParticipantCreateOutput,
  ParticipantListInput,
  ParticipantListOutput,
  TokenCreateInput,
  TokenCreateOutput,
  TokenRevokeInput,
} from '@tether/contracts';
import {
  createParticipantWithToken,
  issueParticipantToken,
  revokeParticipantToken,
} from '../../auth/service.js';
import { listParticipants } from '../../participants/service.js';
import { router } from '../init.js';
import { adminProcedure, participantProcedure } from '../procedures.js';

export const participantRouter = router({
  create: adminProcedure
    .input(ParticipantCreateInput)
    .output(ParticipantCreateOutput)
    .mutation(({ ctx, input }) => createParticipantWithToken(ctx.deps.db, input)),
  list: adminProcedure
    .input(ParticipantListInput)
    .output(ParticipantListOutput)
    .query(({ ctx, input }) => listParticipants(ctx.deps.db, input ?? {})),
});

export const tokenRouter = router({
  create: participantProcedure
    .input(TokenCreateInput)
    .output(TokenCreateOutput)
    .mutation(({ ctx, input }) =>
      issueParticipantToken(
        ctx.deps.db,
        ctx.principal.participantId,
        input.name,
        input.expiresInSeconds,
      ),
    ),
  revoke: participantProcedure
    .input(TokenRevokeInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) =>
      revokeParticipantToken(ctx.deps.db, ctx.principal, input.tokenId, ctx.deps.revocations),
    ),
});
