/** Access policy: who may invoke a node's capability. */
import { z } from 'zod';

/**
 * `owner` (the default: the node's owner and admins), `free` (any active member of a session the
 * node is attached to), `leased` (one holder at a time, with expiry), `gated` (each invocation
 * needs an owner's approval).
 */
export const CapabilityPolicy = z.enum(['owner', 'free', 'leased', 'gated']);
export type CapabilityPolicy = z.infer<typeof CapabilityPolicy>;
