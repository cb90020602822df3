/** Wire schemas of `session.*` and `membership.*`. */
import { z } from 'zod';
import { ParticipantId, SessionId, Timestamp } from '../ids.js';
import { MembershipState, SessionRole } from '../states.js';
import { EventEnvelopeVersion } from '../version.js';
import { PageInput, page } from './common.js';

export const SessionName = z.string().trim().min(1).max(200);

export const SessionCreateInput = z.strictObject({
  name: SessionName,
  minNodeVersion: EventEnvelopeVersion.optional(),
});
export type SessionCreateInput = z.infer<typeof SessionCreateInput>;

export const SessionView = z.object({
  sessionId: SessionId,
  name: z.string(),
  state: z.string(),
  minNodeVersion: EventEnvelopeVersion.nullable(),
  createdBy: ParticipantId,
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type SessionView = z.infer<typeof SessionView>;

export const SessionRaiseFloorInput = z.strictObject({
  sessionId: SessionId,
  minNodeVersion: EventEnvelopeVersion,
});
export type SessionRaiseFloorInput = z.infer<typeof SessionRaiseFloorInput>;

export const MembershipView = z.object({
  membershipId: z.uuid(),
  sessionId: SessionId,
  participantId: ParticipantId,
  role: SessionRole,
  state: MembershipState,
  joinedAt: Timestamp,
  updatedAt: Timestamp,
});
export type MembershipView = z.infer<typeof MembershipView>;

export const MembershipAddInput = z.strictObject({
  sessionId: SessionId,
  participantId: ParticipantId,
  role: SessionRole,
  state: MembershipState.optional(),
});
export type MembershipAddInput = z.infer<typeof MembershipAddInput>;

export const MembershipUpdateInput = z.strictObject({
  sessionId: SessionId,
  participantId: ParticipantId,
  role: SessionRole.optional(),
  state: MembershipState.optional(),
});
export type MembershipUpdateInput = z.infer<typeof MembershipUpdateInput>;

export const MembershipRemoveInput = z.strictObject({
  sessionId: SessionId,
  participantId: ParticipantId,
});
export type MembershipRemoveInput = z.infer<typeof MembershipRemoveInput>;

export const SessionIdInput = z.strictObject({ sessionId: SessionId });
export const SessionListInput = z.strictObject({ ...PageInput }).optional();
export const SessionListOutput = page(SessionView);
export const MembershipListOutput = z.object({ items: z.array(MembershipView) });
