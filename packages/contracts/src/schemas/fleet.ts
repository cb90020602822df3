/** `fleet.events`: the live, resumable feed of fleet state changes (never heartbeats). */
import { z } from 'zod';
import { FleetEventPayloads, FleetEventType } from '../events.js';
import { NodeId, SessionId, Timestamp } from '../ids.js';
import { PAGE_LIMIT_MAX } from './common.js';

/** Event ids are decimal strings (a PostgreSQL bigint does not fit a JSON number). */
export const FleetEventId = z.string().regex(/^(0|[1-9][0-9]{0,18})$/, 'a decimal event id');
export type FleetEventId = z.infer<typeof FleetEventId>;

export const FLEET_FILTER_TYPES_MAX = 32;

export const FleetEventsFilter = z.strictObject({
  nodeId: NodeId.optional(),
  sessionId: SessionId.optional(),
  types: z.array(FleetEventType).min(1).max(FLEET_FILTER_TYPES_MAX).optional(),
});
export type FleetEventsFilter = z.infer<typeof FleetEventsFilter>;

export const FleetEventsInput = z.strictObject({
  /**
   * Resume after this event: every later event the caller may see is delivered once, in order,
   * then live ones. Omitted: live events only. (SSE clients send it back automatically.)
   */
  lastEventId: FleetEventId.nullish(),
  filter: FleetEventsFilter.optional(),
});
export type FleetEventsInput = z.infer<typeof FleetEventsInput>;

/**
 * One event of a type: the envelope every event shares and that type's payload as `data`.
 * Open objects: a consumer ignores fields it does not know (outputs may grow).
 */
function eventOf<T extends FleetEventType>(type: T) {
  return z.object({
    id: FleetEventId,
    at: Timestamp,
    type: z.literal(type),
    nodeId: z.string().nullable(),
    sessionId: z.string().nullable(),
    data: FleetEventPayloads[type],
  });
}

/** A fleet event: a union discriminated by `type`, each type with its own `data` schema. */
export const FleetEvent = z.discriminatedUnion('type', [
  eventOf('node.enrolled'),
  eventOf('node.updated'),
  eventOf('node.revoked'),
  eventOf('presence.changed'),
  eventOf('runtimenode.attached'),
  eventOf('runtimenode.detached'),
  eventOf('runtimenode.state_changed'),
  eventOf('runtimenode.capabilities_updated'),
  eventOf('runtimenode.revoked'),
  eventOf('session.floor_raised'),
  eventOf('pairing.requested'),
  eventOf('pairing.approved'),
  eventOf('pairing.rejected'),
  eventOf('pairing.expired'),
  eventOf('policy.changed'),
  eventOf('lease.granted'),
  eventOf('lease.renewed'),
  eventOf('lease.released'),
  eventOf('lease.expired'),
  eventOf('command.invoked'),
  eventOf('command.refused'),
  eventOf('command.state_changed'),
]);
export type FleetEvent = z.infer<typeof FleetEvent>;
/** The event of one type, e.g. `FleetEventOf<'presence.changed'>`. */
export type FleetEventOf<T extends FleetEventType> = Extract<FleetEvent, { type: T }>;

// Every event type is in the union (a compile error otherwise).
const everyTypeInUnion: [Exclude<FleetEventType, FleetEvent['type']>] extends [never]
  ? true
  : never = true;
void everyTypeInUnion;

/** The view of an event on the wire (the same schema as `FleetEvent`). */
export const FleetEventView = FleetEvent;
export type FleetEventView = FleetEvent;

export const FleetListInput = z.strictObject({
  /** Events after this id; omitted: from the oldest retained event. */
  afterId: FleetEventId.optional(),
  filter: FleetEventsFilter.optional(),
  limit: z.number().int().min(1).max(PAGE_LIMIT_MAX).optional(),
});
export type FleetListInput = z.infer<typeof FleetListInput>;

export const FleetListOutput = z.object({
  items: z.array(FleetEventView),
  /** Pass back as `afterId` (or as the subscription's `lastEventId`) to continue. */
  lastEventId: FleetEventId,
  /** More events may follow right away. */
  hasMore: z.boolean(),
});
export type FleetListOutput = z.infer<typeof FleetListOutput>;
