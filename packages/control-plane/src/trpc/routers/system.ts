import { SystemInfoInput, SystemInfoOutput } from '@tether/contracts';
import { router } from '../init.js';
import { rest } from '../rest-meta.js';
import { chargeRejectedCredential, publicProcedure } from '../procedures.js';
import { systemInfo } from '../system-info.js';

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
      return systemInfo(ctx.deps.settings, ctx.principal);
    }),
});
