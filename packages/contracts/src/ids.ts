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

/** ISO-8601 timestamp with offset, as every time on the wire is sent. */
export const Timestamp = z.iso.datetime({ offset: true });
export type Timestamp = z.infer<typeof Timestamp>;
