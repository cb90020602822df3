/** `pairing.*`: device-first enrollment with an operator's approval. */
import { z } from 'zod';
import { NodeId, ParticipantId, Timestamp } from '../ids.js';
import { DisplayName, Metadata, NodeType, Platform } from './common.js';
import { TokenString } from './participants.js';

export const PAIRING_DEFAULT_TTL_SECONDS = 600;
export const PairingState = z.enum(['pending', 'approved', 'rejected', 'expired', 'claimed']);
export type PairingState = z.infer<typeof PairingState>;

/** A claim secret is chosen by the daemon (or generated): 32–256 URL-safe characters. */
export const ClaimSecret = z.string().regex(/^[A-Za-z0-9_-]{32,256}$/);

export const PairingRequestInput = z.strictObject({
  name: DisplayName,
  nodeType: NodeType,
  platform: Platform.optional(),
  nodeId: NodeId.optional(),
  claimSecret: ClaimSecret.optional(),
  metadata: Metadata.optional(),
});
export type PairingRequestInput = z.infer<typeof PairingRequestInput>;

export const PairingRequestOutput = z.object({
  requestId: z.uuid(),
  pairingCode: z.string(),
  claimSecret: ClaimSecret,
  expiresAt: Timestamp,
});

export const PairingView = z.object({
  requestId: z.uuid(),
  pairingCode: z.string(),
  state: PairingState,
  name: z.string(),
  nodeType: z.string(),
  platform: z.string().nullable(),
  requestedNodeId: z.string().nullable(),
  metadata: z.record(z.string(), z.json()),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  expiresAt: Timestamp,
  decidedBy: ParticipantId.nullable(),
  decidedAt: Timestamp.nullable(),
  nodeId: NodeId.nullable(),
});
export type PairingView = z.infer<typeof PairingView>;

export const PairingListInput = z.strictObject({ state: PairingState.optional() }).optional();
export const PairingListOutput = z.object({ items: z.array(PairingView) });

/**
 * The short code a device shows (`K7QF-2M9D`). People type it, so case does not matter and the
 * dash may be left out or be a space; the server compares the normalised form.
 */
export const PairingCode = z.string().regex(/^[A-Za-z0-9]{4}[- ]?[A-Za-z0-9]{4}$/, {
  message: 'A pairing code looks like K7QF-2M9D (8 letters/digits, dash optional).',
});

/** Which request to decide: exactly one of its id or the code its device shows. */
export const PairingDecisionInput = z
  .strictObject({ requestId: z.uuid().optional(), pairingCode: PairingCode.optional() })
  .refine((v) => (v.requestId === undefined) !== (v.pairingCode === undefined), {
    message: 'Give exactly one of requestId or pairingCode.',
  });
export type PairingDecisionInput = z.infer<typeof PairingDecisionInput>;
export const PairingDecisionOutput = z.object({ requestId: z.uuid(), state: PairingState });

export const PairingClaimInput = z.strictObject({ requestId: z.uuid(), claimSecret: ClaimSecret });
export const PairingClaimOutput = z.object({
  state: PairingState,
  nodeId: NodeId.optional(),
  nodeToken: TokenString.optional(),
  ownerParticipantId: ParticipantId.optional(),
});
