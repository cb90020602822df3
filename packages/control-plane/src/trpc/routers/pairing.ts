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
import { rest } from '../rest-meta.js';
import { participantProcedure, publicLimitedProcedure } from '../procedures.js';

export const pairingRouter = router({
  request: publicLimitedProcedure
    .meta(
      rest(
        'POST',
        '/pairing/requests',
        'pairing',
        'Ask to be paired (device first); show the pairing code to a person',
        { public: true },
      ),
    )
    .input(PairingRequestInput)
    .output(PairingRequestOutput)
    .mutation(({ ctx, input }) =>
      pairing.requestPairing(ctx.deps.db, input, {
        requesterAddress: ctx.peer,
        ttlSeconds: ctx.deps.settings.pairingTtlSeconds,
      }),
    ),
  list: participantProcedure
    .meta(rest('GET', '/pairing/requests', 'pairing', 'List pairing requests'))
    .input(PairingListInput)
    .output(PairingListOutput)
    .query(({ ctx, input }) => pairing.listRequests(ctx.deps.db, ctx.principal, input ?? {})),
  approve: participantProcedure
    .meta(
      rest(
        'POST',
        '/pairing/approve',
        'pairing',
        'Approve a pending pairing request, named by requestId or by the pairing code its device shows',
      ),
    )
    .input(PairingDecisionInput)
    .output(PairingDecisionOutput)
    .mutation(({ ctx, input }) =>
      pairing.approveRequest(ctx.deps.db, ctx.principal, input, {
        memberNodeIds: ctx.deps.settings.memberNodeIds,
      }),
    ),
  reject: participantProcedure
    .meta(
      rest(
        'POST',
        '/pairing/reject',
        'pairing',
        'Reject a pending pairing request, named by requestId or by the pairing code its device shows',
      ),
    )
    .input(PairingDecisionInput)
    .output(PairingDecisionOutput)
    .mutation(({ ctx, input }) => pairing.rejectRequest(ctx.deps.db, ctx.principal, input)),
  claim: publicLimitedProcedure
    .meta(
      rest(
        'POST',
        '/pairing/requests/{requestId}/claim',
        'pairing',
        'Collect the node token of an approved request (exactly once)',
        { public: true },
      ),
    )
    .input(PairingClaimInput)
    .output(PairingClaimOutput)
    .mutation(({ ctx, input }) => pairing.claimRequest(ctx.deps.db, input)),
});
