import { z } from 'zod';
import { EventEnvelopeVersion } from '../version.js';
import { Empty } from './common.js';

export const SystemInfoInput = Empty.optional();

/** An inclusive range of contract MAJOR versions. */
export const ContractMajorRange = z.object({
  min: z.number().int().nonnegative(),
  max: z.number().int().nonnegative(),
});
export type ContractMajorRange = z.infer<typeof ContractMajorRange>;

export const SystemInfoOutput = z.object({
  serverVersion: z.string(),
  contractVersion: EventEnvelopeVersion,
  /** The contract MAJORs this server serves; a client outside gets version.unsupported / version.ceiling_exceeded. */
  supportedContractMajors: ContractMajorRange,
  heartbeatIntervalMs: z.number().int().positive(),
  degradedAfterMs: z.number().int().positive(),
  offlineAfterMs: z.number().int().positive(),
  sweepIntervalMs: z.number().int().positive(),
});
export type SystemInfoOutput = z.infer<typeof SystemInfoOutput>;
