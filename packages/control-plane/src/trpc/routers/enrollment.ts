import {
  DeviceEnrollBatchInput,
  DeviceEnrollBatchOutput,
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
import { rest } from '../rest-meta.js';
import { participantProcedure, publicLimitedProcedure } from '../procedures.js';

export const enrollmentRouter = router({
  createKey: participantProcedure
    .meta(rest('POST', '/enrollment-keys', 'enrollment', 'Create an enrollment key'))
    .input(EnrollmentCreateKeyInput)
    .output(EnrollmentCreateKeyOutput)
    .mutation(({ ctx, input }) => enrollment.createKey(ctx.deps.db, ctx.principal, input ?? {})),
  listKeys: participantProcedure
    .meta(rest('GET', '/enrollment-keys', 'enrollment', 'List your enrollment keys (admins: all)'))
    .input(EnrollmentListKeysInput)
    .output(EnrollmentListKeysOutput)
    .query(({ ctx }) => enrollment.listKeys(ctx.deps.db, ctx.principal)),
  revokeKey: participantProcedure
    .meta(rest('POST', '/enrollment-keys/{keyId}/revoke', 'enrollment', 'Revoke an enrollment key'))
    .input(EnrollmentRevokeKeyInput)
    .output(NullOutput)
    .mutation(({ ctx, input }) => enrollment.revokeKey(ctx.deps.db, ctx.principal, input)),
});

export const deviceRouter = router({
  enroll: publicLimitedProcedure
    .meta(
      rest(
        'POST',
        '/device/enroll',
        'enrollment',
        'Enroll a device with an enrollment key; returns its node token',
        { public: true },
      ),
    )
    .input(DeviceEnrollInput)
    .output(DeviceEnrollOutput)
    .mutation(({ ctx, input }) =>
      enrollment.enroll(ctx.deps.db, input, { memberNodeIds: ctx.deps.settings.memberNodeIds }),
    ),
  enrollBatch: publicLimitedProcedure
    .meta(
      rest(
        'POST',
        '/device/enroll-batch',
        'enrollment',
        'Enroll up to 500 devices with one reusable enrollment key (a fleet); all or none',
        { public: true },
      ),
    )
    .input(DeviceEnrollBatchInput)
    .output(DeviceEnrollBatchOutput)
    .mutation(({ ctx, input }) =>
      enrollment.enrollBatch(ctx.deps.db, input, {
        memberNodeIds: ctx.deps.settings.memberNodeIds,
      }),
    ),
});
