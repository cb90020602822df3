import { z } from 'zod';
import { NodeId, ParticipantId } from '../ids.js';
import { ParticipantRole } from '../states.js';
import { EventEnvelopeVersion } from '../version.js';
import { Empty } from './common.js';

export const SystemInfoInput = Empty.optional();

/** An inclusive range of contract MAJOR versions. */
export const ContractMajorRange = z.object({
  min: z.number().int().nonnegative(),
  max: z.number().int().nonnegative(),
});
export type ContractMajorRange = z.infer<typeof ContractMajorRange>;

/** Who the presented credential belongs to (null: none was presented, or it is not valid). */
export const SystemInfoCaller = z
  .discriminatedUnion('kind', [
    z.object({
      kind: z.literal('participant'),
      participantId: ParticipantId,
      role: ParticipantRole,
    }),
    z.object({ kind: z.literal('node'), nodeId: NodeId }),
  ])
  .nullable();

export const SystemInfoOutput = z.object({
  serverVersion: z.string(),
  contractVersion: EventEnvelopeVersion,
  /** The contract MAJORs this server serves; a client outside gets version.unsupported / version.ceiling_exceeded. */
  supportedContractMajors: ContractMajorRange,
  heartbeatIntervalMs: z.number().int().positive(),
  degradedAfterMs: z.number().int().positive(),
  offlineAfterMs: z.number().int().positive(),
  sweepIntervalMs: z.number().int().positive(),
  /**
   * The caller, when the request carried a valid credential; a wrong, revoked or expired one
   * gives null here (this call stays public), so a client can check a token without an error.
   */
  caller: SystemInfoCaller,
});
export type SystemInfoOutput = z.infer<typeof SystemInfoOutput>;
