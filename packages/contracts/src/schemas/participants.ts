/** `participant.*` and `token.*`. Tokens appear in responses exactly once, at creation. */
import { z } from 'zod';
import { ParticipantId, Timestamp } from '../ids.js';
import { ParticipantRole } from '../states.js';
import { DisplayName, PageInput, page } from './common.js';

export const PARTICIPANT_TOKEN_PREFIX = 'tpt_';
export const NODE_TOKEN_PREFIX = 'tnd_';

/** Any credential string: bounded so a huge header cannot cost hashing time. */
export const TokenString = z.string().min(8).max(256);

export const ParticipantCreateInput = z.strictObject({ name: DisplayName, role: ParticipantRole });
export const ParticipantCreateOutput = z.object({
  participantId: ParticipantId,
  tokenId: z.uuid(),
  token: TokenString,
});

export const ParticipantView = z.object({
  participantId: ParticipantId,
  name: z.string(),
  role: ParticipantRole,
  createdAt: Timestamp,
  disabledAt: Timestamp.nullable(),
});
export type ParticipantView = z.infer<typeof ParticipantView>;

export const ParticipantListInput = z.strictObject({ ...PageInput }).optional();
export const ParticipantListOutput = page(ParticipantView);

export const TokenCreateInput = z.strictObject({
  name: DisplayName,
  expiresInSeconds: z
    .number()
    .int()
    .min(60)
    .max(10 * 365 * 24 * 3600)
    .optional(),
});
export const TokenCreateOutput = z.object({
  tokenId: z.uuid(),
  token: TokenString,
  expiresAt: Timestamp.nullable(),
});
export const TokenRevokeInput = z.strictObject({ tokenId: z.uuid() });
export const NullOutput = z.null();
