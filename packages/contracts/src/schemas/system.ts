import { z } from 'zod';
import { EventEnvelopeVersion } from '../version.js';
import { Empty } from './common.js';

export const SystemInfoInput = Empty.optional();

export const SystemInfoOutput = z.object({
  serverVersion: z.string(),
  contractVersion: EventEnvelopeVersion,
  heartbeatIntervalMs: z.number().int().positive(),
  degradedAfterMs: z.number().int().positive(),
  offlineAfterMs: z.number().int().positive(),
  sweepIntervalMs: z.number().int().positive(),
});
export type SystemInfoOutput = z.infer<typeof SystemInfoOutput>;
