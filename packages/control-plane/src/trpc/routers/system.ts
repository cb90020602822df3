import {
  CONTRACT_VERSION,
  SUPPORTED_CONTRACT_MAJORS,
  SystemInfoInput,
  SystemInfoOutput,
} from '@tether/contracts';
import { router } from '../init.js';
import { publicProcedure } from '../procedures.js';

export const systemRouter = router({
  info: publicProcedure
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
