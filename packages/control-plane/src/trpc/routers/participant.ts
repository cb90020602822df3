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
} from '../../auth/participant-tokens.js';
import {
  listParticipants,
  resumeParticipant,
  suspendParticipant,
} from '../../participants/service.js';
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
    .mutation(({ ctx, input }) =>
      createParticipantWithToken(ctx.deps.db, input, ctx.principal.tokenId),
    ),
  list: adminProcedure
    .meta(rest('GET', '/participants', 'participants', 'List participants (admin)'))
    .input(ParticipantListInput)
    .output(ParticipantListOutput)
    .query(({ ctx, input }) => listParticipants(ctx.deps.db, input ?? {})),
  suspend: adminProcedure
    .meta(
      rest(
        'POST',
        '/participants/{participantId}/suspend',
        'participants',
        'Suspend a participant: its tokens stop working, its streams end (admin)',
      ),
    )
    .input(ParticipantIdInput)
    .output(ParticipantView)
    .mutation(({ ctx, input }) =>
      suspendParticipant(ctx.deps.db, ctx.principal, input.participantId, ctx.deps.revocations),
    ),
  resume: adminProcedure
    .meta(
      rest(
        'POST',
        '/participants/{participantId}/resume',
        'participants',
        'Resume a suspended participant (admin)',
      ),
    )
    .input(ParticipantIdInput)
    .output(ParticipantView)
    .mutation(({ ctx, input }) => resumeParticipant(ctx.deps.db, input.participantId)),
});

export const tokenRouter = router({
  create: participantProcedure
    .meta(rest('POST', '/tokens', 'tokens', 'Issue another token for yourself'))
    .input(TokenCreateInput)
    .output(TokenCreateOutput)
    .mutation(({ ctx, input }) => createChildToken(ctx.deps.db, ctx.principal, input)),
  revoke: participantProcedure
    .meta(rest('POST', '/tokens/{tokenId}/revoke', 'tokens', 'Revoke a participant token'))
    .input(TokenRevokeInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) =>
      revokeParticipantToken(ctx.deps.db, ctx.principal, input.tokenId, ctx.deps.revocations),
    ),
  list: participantProcedure
    .meta(rest('GET', '/tokens', 'tokens', "List your tokens' metadata (admins: anyone's)"))
    .input(TokenListInput)
    .output(TokenListOutput)
    .query(({ ctx, input }) => listTokens(ctx.deps.db, ctx.principal, input ?? {})),
});
