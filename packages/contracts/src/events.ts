/** The fleet event feed: durable, ordered state changes (never one per heartbeat). */
import { z } from 'zod';

export const FleetEventType = z.enum([
  'node.enrolled',
  'node.updated',
  'node.revoked',
  'presence.changed',
  'runtimenode.attached',
  'runtimenode.detached',
  'runtimenode.state_changed',
  'runtimenode.capabilities_updated',
  'runtimenode.revoked',
  'session.floor_raised',
  'pairing.requested',
  'pairing.approved',
  'pairing.rejected',
  'pairing.expired',
]);
export type FleetEventType = z.infer<typeof FleetEventType>;

/** Why presence changed. */
export const PresenceCause = z.enum([
  'heartbeat',
  'sweep',
  'connection',
  'attach',
  'detach',
  'revoke',
]);
export type PresenceCause = z.infer<typeof PresenceCause>;
