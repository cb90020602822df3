import {
  CONTRACT_VERSION,
  SUPPORTED_CONTRACT_MAJORS,
  SystemInfoInput,
  SystemInfoOutput,
} from '@tether/contracts';
import { router } from '../init.js';
import { rest } from '../rest-meta.js';
import { chargeRejectedCredential, publicProcedure } from '../procedures.js';

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
      // A token the server does not accept costs the address a failure, as on every other call:
      // `caller: null` must not become a way to test guesses without the lockout.
      await chargeRejectedCredential(ctx);
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
