/** `fleet.events`: the live, resumable feed of fleet state changes (never heartbeats). */
import { z } from 'zod';
import { FleetEventType } from '../events.js';
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

export const FleetEventView = z.object({
  id: FleetEventId,
  at: Timestamp,
  type: FleetEventType,
  nodeId: z.string().nullable(),
  sessionId: z.string().nullable(),
  /** Type-specific detail, e.g. presence.changed: `{ from, to, cause }`. */
  data: z.record(z.string(), z.json()),
});
export type FleetEventView = z.infer<typeof FleetEventView>;

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
