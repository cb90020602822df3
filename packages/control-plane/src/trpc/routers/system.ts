import {
  CONTRACT_VERSION,
  SUPPORTED_CONTRACT_MAJORS,
  SystemInfoInput,
  SystemInfoOutput,
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
    .query(({ ctx }) => {
      const s = ctx.deps.settings;
      return {
        serverVersion: s.serverVersion,
        contractVersion: CONTRACT_VERSION,
        supportedContractMajors: { ...SUPPORTED_CONTRACT_MAJORS },
        heartbeatIntervalMs: s.heartbeatIntervalMs,
        degradedAfterMs: s.degradedAfterMs,
        offlineAfterMs: s.offlineAfterMs,
        sweepIntervalMs: s.sweepIntervalMs,
      };
    }),
});
