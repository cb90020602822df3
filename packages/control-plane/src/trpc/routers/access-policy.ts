import {
  CapabilityPolicyView,
  LeaseAcquireInput,
  LeaseListInput,
  LeaseListOutput,
  LeaseReleaseInput,
  LeaseRenewInput,
  LeaseView,
  PolicyGetInput,
  PolicyGetOutput,
  PolicySetInput,
} from '@tether/contracts';
import * as leases from '../../access-policy/leases.js';
import * as policies from '../../access-policy/policies.js';
import { router } from '../init.js';
import { rest } from '../rest-meta.js';
import { participantProcedure } from '../procedures.js';

export const policyRouter = router({
  set: participantProcedure
    .meta(
      rest(
        'PUT',
        '/nodes/{nodeId}/policies/{capability}',
        'access-policy',
        "Set who may invoke a node's capability (owner, free, leased, gated)",
      ),
    )
    .input(PolicySetInput)
    .output(CapabilityPolicyView)
    .mutation(({ ctx, input }) => policies.setPolicy(ctx.deps.db, ctx.principal, input)),
  get: participantProcedure
    .meta(
      rest(
        'GET',
        '/nodes/{nodeId}/policies',
        'access-policy',
        "A node's capability access policies (set or default)",
      ),
    )
    .input(PolicyGetInput)
    .output(PolicyGetOutput)
    .query(({ ctx, input }) => policies.getPolicies(ctx.deps.db, ctx.principal, input)),
});

export const leaseRouter = router({
  acquire: participantProcedure
    .meta(
      rest(
        'POST',
        '/nodes/{nodeId}/leases',
        'access-policy',
        "Acquire the lease of a node's leased capability",
      ),
    )
    .input(LeaseAcquireInput)
    .output(LeaseView)
    .mutation(({ ctx, input }) => leases.acquireLease(ctx.deps.db, ctx.principal, input)),
  renew: participantProcedure
    .meta(rest('POST', '/leases/{leaseId}/renew', 'access-policy', 'Extend a lease you hold'))
    .input(LeaseRenewInput)
    .output(LeaseView)
    .mutation(({ ctx, input }) => leases.renewLease(ctx.deps.db, ctx.principal, input)),
  release: participantProcedure
    .meta(
      rest(
        'POST',
        '/leases/{leaseId}/release',
        'access-policy',
        "Release a lease you hold (or break one, as the node's owner or an admin)",
      ),
    )
    .input(LeaseReleaseInput)
    .output(LeaseView)
    .mutation(({ ctx, input }) => leases.releaseLease(ctx.deps.db, ctx.principal, input)),
  list: participantProcedure
    .meta(rest('GET', '/nodes/{nodeId}/leases', 'access-policy', "A node's active leases"))
    .input(LeaseListInput)
    .output(LeaseListOutput)
    .query(({ ctx, input }) => leases.listLeases(ctx.deps.db, ctx.principal, input)),
});
