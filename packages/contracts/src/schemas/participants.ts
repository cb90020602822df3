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
  /** The first token expires no later than the admin token that created the participant. */
  expiresAt: Timestamp.nullable(),
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

/** `participant.suspend` / `participant.resume` (admin) → the participant as it now is. */
export const ParticipantIdInput = z.strictObject({ participantId: ParticipantId });

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

/** `token.list`: own tokens; an admin's lists everyone's, or one participant's. */
export const TokenListInput = z
  .strictObject({ participantId: ParticipantId.optional(), ...PageInput })
  .optional();

/** A token's metadata. Never the token or its hash. */
export const TokenView = z.strictObject({
  tokenId: z.uuid(),
  participantId: ParticipantId,
  name: z.string(),
  createdAt: Timestamp,
  lastUsedAt: Timestamp.nullable(),
  /** Never later than the creator's expiry (createdByTokenId). */
  expiresAt: Timestamp.nullable(),
  revokedAt: Timestamp.nullable(),
  /** The token that created this one with token.create: revoking it revokes this one. */
  createdByTokenId: z.uuid().nullable(),
});
export type TokenView = z.infer<typeof TokenView>;
export const TokenListOutput = page(TokenView);
export const NullOutput = z.null();
