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
import { rest } from '../rest-meta.js';
import { adminProcedure, participantProcedure } from '../procedures.js';

export const participantRouter = router({
  create: adminProcedure
    .meta(
      rest(
        'POST',
        '/participants',
        'participants',
        'Create a participant and its first token (admin)',
      ),
    )
    .input(ParticipantCreateInput)
    .output(ParticipantCreateOutput)
    .mutation(({ ctx, input }) => createParticipantWithToken(ctx.deps.db, input)),
  list: adminProcedure
    .meta(rest('GET', '/participants', 'participants', 'List participants (admin)'))
    .input(ParticipantListInput)
    .output(ParticipantListOutput)
    .query(({ ctx, input }) => listParticipants(ctx.deps.db, input ?? {})),
});

export const tokenRouter = router({
  create: participantProcedure
    .meta(rest('POST', '/tokens', 'tokens', 'Issue another token for yourself'))
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
    .meta(rest('POST', '/tokens/{tokenId}/revoke', 'tokens', 'Revoke a participant token'))
    .input(TokenRevokeInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) =>
      revokeParticipantToken(ctx.deps.db, ctx.principal, input.tokenId, ctx.deps.revocations),
    ),
});
