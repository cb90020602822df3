/** Identifiers on the wire. Node ids are chosen by daemons (or generated); the rest are UUIDs. */
import { z } from 'zod';

export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

export const NodeId = z.string().min(1).max(256).regex(NODE_ID_PATTERN).brand<'NodeId'>();
export type NodeId = z.infer<typeof NodeId>;

export const SessionId = z.uuid().brand<'SessionId'>();
export type SessionId = z.infer<typeof SessionId>;

export const ParticipantId = z.uuid().brand<'ParticipantId'>();
export type ParticipantId = z.infer<typeof ParticipantId>;

export const AttachmentId = z.uuid().brand<'AttachmentId'>();
export type AttachmentId = z.infer<typeof AttachmentId>;

/**
 * A point in time in an output. On the tRPC wire (superjson) it arrives as a `Date`; over the
 * plain-JSON REST surface and in the published JSON Schemas it is an ISO-8601 date-time string.
 */
export const Timestamp = z.date().meta({ type: 'string', format: 'date-time' });
export type Timestamp = z.infer<typeof Timestamp>;

/**
 * A point in time in an input: a `Date` on the tRPC wire (superjson), an ISO-8601 string over the
 * plain-JSON REST surface; either becomes a `Date`. Published as a date-time string.
 */
export const TimestampInput = z.coerce.date().meta({ type: 'string', format: 'date-time' });
export type TimestampInput = z.infer<typeof TimestampInput>;

/** A command (`command.*`): a uuid chosen by the server. */
export const CommandId = z.uuid().brand<'CommandId'>();
export type CommandId = z.infer<typeof CommandId>;
