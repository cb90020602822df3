import {
  PairingClaimInput,
  PairingClaimOutput,
  PairingDecisionInput,
  PairingDecisionOutput,
  PairingListInput,
  PairingListOutput,
  PairingRequestInput,
  PairingRequestOutput,
} from '@tether/contracts';
import * as pairing from '../../pairing/service.js';
import { router } from '../init.js';
import { participantProcedure, publicLimitedProcedure } from '../procedures.js';

export const pairingRouter = router({
  request: publicLimitedProcedure
    .input(PairingRequestInput)
    .output(PairingRequestOutput)
    .mutation(({ ctx, input }) =>
      pairing.requestPairing(ctx.deps.db, input, {
        requesterAddress: ctx.peer,
        ttlSeconds: ctx.deps.settings.pairingTtlSeconds,
      }),
    ),
  list: participantProcedure
    .input(PairingListInput)
    .output(PairingListOutput)
    .query(({ ctx, input }) => pairing.listRequests(ctx.deps.db, ctx.principal, input ?? {})),
  approve: participantProcedure
    .input(PairingDecisionInput)
    .output(PairingDecisionOutput)
    .mutation(({ ctx, input }) =>
      pairing.approveRequest(ctx.deps.db, ctx.principal, input, {
        memberNodeIds: ctx.deps.settings.memberNodeIds,
      }),
    ),
  reject: participantProcedure
    .input(PairingDecisionInput)
    .output(PairingDecisionOutput)
    .mutation(({ ctx, input }) => pairing.rejectRequest(ctx.deps.db, ctx.principal, input)),
  claim: publicLimitedProcedure
    .input(PairingClaimInput)
    .output(PairingClaimOutput)
    .mutation(({ ctx, input }) => pairing.claimRequest(ctx.deps.db, input)),
});
