/**
 * Every wire schema by procedure: the source of the JSON Schema snapshots and of the
 * compatibility check. Add a procedure here when it is added to the API.
 */
import type { z } from 'zod';
import * as rn from './schemas/runtimenode.js';
import * as s from './schemas/sessions.js';

export interface WireProcedure {
  readonly kind: 'query' | 'mutation' | 'subscription';
  readonly input: z.ZodType;
  readonly output: z.ZodType;
}

export const WIRE_PROCEDURES = {
  'runtimenode.attach': { kind: 'mutation', input: rn.AttachInput, output: rn.AttachOutput },
  'runtimenode.heartbeat': { kind: 'mutation', input: rn.HeartbeatInput, output: rn.HeartbeatOutput },
  'runtimenode.capabilityupdate': {
    kind: 'mutation',
    input: rn.CapabilityUpdateInput,
    output: rn.CapabilityUpdateOutput,
  },
  'runtimenode.detach': { kind: 'mutation', input: rn.DetachInput, output: rn.DetachOutput },
  'runtimenode.roster': { kind: 'query', input: rn.RosterInput, output: rn.RosterOutput },
  'session.create': { kind: 'mutation', input: s.SessionCreateInput, output: s.SessionView },
  'session.raiseFloor': { kind: 'mutation', input: s.SessionRaiseFloorInput, output: s.SessionView },
  'membership.add': { kind: 'mutation', input: s.MembershipAddInput, output: s.MembershipView },
  'membership.update': { kind: 'mutation', input: s.MembershipUpdateInput, output: s.MembershipView },
} as const satisfies Record<string, WireProcedure>;

export type WireProcedureName = keyof typeof WIRE_PROCEDURES;
