import {
  CONTRACT_VERSION,
  SUPPORTED_CONTRACT_MAJORS,
  SystemInfoInput,
  SystemInfoOutput,
  TetherError,
} from '@tether/contracts';
import { router } from '../init.js';
import { rest } from '../rest-meta.js';
import { publicProcedure } from '../procedures.js';

export const systemRouter = router({
  info: publicProcedure
    .meta(
      rest(
        'GET',
        '/system/info',
        'system',
        'Server version, contract version and liveness settings',
        { public: true },
      ),
    )
    .input(SystemInfoInput)
    .output(SystemInfoOutput)
    .query(async ({ ctx }) => {
      if (ctx.credentialRejected) {
        // A token the server does not accept costs the address a failure, as on every other
        // call: `caller: null` must not become a way to test guesses without the lockout.
        const wait = await ctx.deps.limits.authFailures.take(ctx.peer);
        if (wait > 0) {
          throw new TetherError(
            'rate_limited',
            'Too many failed authentications from this address.',
            {
              retryAfterMs: wait,
            },
          );
        }
      }
      const s = ctx.deps.settings;
      return {
        serverVersion: s.serverVersion,
        contractVersion: CONTRACT_VERSION,
        supportedContractMajors: { ...SUPPORTED_CONTRACT_MAJORS },
        heartbeatIntervalMs: s.heartbeatIntervalMs,
        degradedAfterMs: s.degradedAfterMs,
        offlineAfterMs: s.offlineAfterMs,
        sweepIntervalMs: s.sweepIntervalMs,
        caller:
          ctx.principal === null
            ? null
            : ctx.principal.kind === 'participant'
              ? {
                  kind: 'participant' as const,
                  participantId: ctx.principal.participantId,
                  role: ctx.principal.role,
                }
              : { kind: 'node' as const, nodeId: ctx.principal.nodeId },
      };
    }),
});
