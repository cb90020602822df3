import {
  DeviceEnrollInput,
  DeviceEnrollOutput,
  EnrollmentCreateKeyInput,
  EnrollmentCreateKeyOutput,
  EnrollmentListKeysInput,
  EnrollmentListKeysOutput,
  EnrollmentRevokeKeyInput,
  NullOutput,
} from '@tether/contracts';
import * as enrollment from '../../enrollment/service.js';
import { router } from '../init.js';
import { participantProcedure, publicLimitedProcedure } from '../procedures.js';

export const enrollmentRouter = router({
  createKey: participantProcedure
    .input(EnrollmentCreateKeyInput)
    .output(EnrollmentCreateKeyOutput)
    .mutation(({ ctx, input }) => enrollment.createKey(ctx.deps.db, ctx.principal, input ?? {})),
  listKeys: participantProcedure
    .input(EnrollmentListKeysInput)
    .output(EnrollmentListKeysOutput)
    .query(({ ctx }) => enrollment.listKeys(ctx.deps.db, ctx.principal)),
  revokeKey: participantProcedure
    .input(EnrollmentRevokeKeyInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) => enrollment.revokeKey(ctx.deps.db, ctx.principal, input)),
});

export const deviceRouter = router({
  enroll: publicLimitedProcedure
    .input(DeviceEnrollInput)
    .output(DeviceEnrollOutput)
    .mutation(({ ctx, input }) =>
      enrollment.enroll(ctx.deps.db, input, { memberNodeIds: ctx.deps.settings.memberNodeIds }),
    ),
});
