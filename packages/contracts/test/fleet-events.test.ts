/**
 * The typed fleet event union: one payload schema per type, the builder every writer uses, open
 * output objects, and the compatibility classifier seeing payload changes in the snapshots.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CONTRACT_VERSION,
  FleetEvent,
  FleetEventPayloads,
  FleetEventType,
  FleetListOutput,
  PresenceCause,
  PresenceChangedPayload,
  WIRE_PROCEDURES,
  allowedVersionsAfter,
  classifySnapshotChanges,
  summarizeCompatChanges,
  fleetEvent,
  formatCompatChange,
  renderSnapshotFiles,
  type FleetEventPayloads as Payloads,
  type WireProcedure,
} from '../src/index.js';

const P1 = '6f1c1a52-3f5e-4b53-9d0e-1c2b3a4d5e6f';
const REQ = '0b7d2a90-8f4b-4c1e-a1d2-3e4f5a6b7c8d';
const ATT = 'c3a1e2f4-5b6d-4e7f-8a9b-0c1d2e3f4a5b';
const CMD = '5d2f0c1e-7a3b-4c9d-8e1f-2a3b4c5d6e7f';

/** A valid payload for every event type, as the control plane writes them. */
const SAMPLES: { [T in FleetEventType]: Payloads[T] } = {
  'node.enrolled': {
    via: 'enrollment_key',
    keyId: REQ,
    ownerParticipantId: P1 as never,
    name: 'mac',
    nodeType: 'desktop',
  },
  'node.updated': {
    changed: ['name', 'labels'],
    by: { kind: 'participant', participantId: P1 as never },
  },
  'node.revoked': {
    by: { kind: 'participant', participantId: P1 as never },
    attachmentsRevoked: 2,
  },
  'presence.changed': { from: 'offline', to: 'online', cause: 'connection' },
  'runtimenode.attached': {
    attachmentId: ATT as never,
    state: 'registering',
    previousState: null,
    readOnly: false,
    nodeVersion: '1.4' as never,
  },
  'runtimenode.detached': { previousState: 'online', reason: null },
  'runtimenode.state_changed': { from: 'registering', to: 'online', reason: 'ready' },
  'runtimenode.capabilities_updated': { capabilities: ['gpu', 'shell'] },
  'runtimenode.revoked': { previousState: 'online', reason: 'node_revoked', by: P1 as never },
  'session.floor_raised': { from: null, to: '2.0' as never, by: P1 as never },
  'pairing.requested': {
    requestId: REQ,
    pairingCode: 'ABCD-1234',
    name: 'pi',
    nodeType: 'edge',
    requestedNodeId: null,
    refreshed: false,
  },
  'pairing.approved': { requestId: REQ, decidedBy: P1 as never },
  'pairing.rejected': { requestId: REQ, decidedBy: P1 as never },
  'pairing.expired': { requestId: REQ, requestedNodeId: 'pi-1' as never },
  'policy.changed': { capability: 'shell', from: 'owner', to: 'leased', by: P1 as never },
  'lease.granted': {
    leaseId: ATT,
    capability: 'shell',
    holder: P1 as never,
    expiresAt: '2026-11-23T10:05:00.000Z',
  },
  'lease.renewed': {
    leaseId: ATT,
    capability: 'shell',
    holder: P1 as never,
    expiresAt: '2026-11-23T10:10:00.000Z',
  },
  'lease.released': {
    leaseId: ATT,
    capability: 'shell',
    holder: P1 as never,
    by: P1 as never,
    broken: false,
  },
  'lease.expired': {
    leaseId: ATT,
    capability: 'shell',
    holder: P1 as never,
    expiredAt: '2026-11-23T10:10:00.000Z',
  },
  'command.invoked': {
    commandId: CMD as never,
    capability: 'shell',
    command: 'run',
    state: 'awaiting_approval',
    by: P1 as never,
    decision: { outcome: 'gate', policy: 'gated' },
    targetedBy: 'capability',
    expiresAt: '2026-11-23T10:01:00.000Z',
  },
  'command.refused': {
    capability: 'shell',
    command: null,
    by: P1 as never,
    policy: 'leased',
    reason: 'lease_held_by_other',
  },
  'command.state_changed': {
    commandId: CMD as never,
    capability: 'shell',
    from: 'pending',
    to: 'delivered',
    by: { kind: 'system', cause: 'delivery' },
    attempt: 1,
  },
};

function envelope(type: FleetEventType, data: unknown) {
  return {
    id: '42',
    at: new Date('2026-11-23T10:00:00.000Z'),
    type,
    nodeId: 'mac-studio',
    sessionId: null,
    data,
  };
}

describe('FleetEvent union', () => {
  it('every event type has a payload schema and a branch of the union, and parses its sample', () => {
    expect(Object.keys(FleetEventPayloads).sort()).toEqual([...FleetEventType.options].sort());
    for (const type of FleetEventType.options) {
      const event = envelope(type, SAMPLES[type]);
      expect(FleetEvent.parse(event), type).toEqual(event);
    }
  });

  it("a payload is checked against its own type's schema, not any type's", () => {
    // presence.changed's payload is not a valid node.revoked payload, and vice versa.
    expect(
      FleetEvent.safeParse(envelope('node.revoked', SAMPLES['presence.changed'])).success,
    ).toBe(false);
    expect(
      FleetEvent.safeParse(envelope('presence.changed', { from: 'offline', to: 'online' })).success,
    ).toBe(false);
    expect(
      FleetEvent.safeParse(
        envelope('presence.changed', { from: 'offline', to: 'asleep', cause: 'sweep' }),
      ).success,
    ).toBe(false);
    expect(FleetEvent.safeParse(envelope('heartbeat' as never, {})).success).toBe(false);
    // A nested union: an enrolment by key needs its key id, one by pairing its request id.
    expect(
      FleetEvent.safeParse(
        envelope('node.enrolled', { ...SAMPLES['node.enrolled'], via: 'pairing' }),
      ).success,
    ).toBe(false);
  });

  it('events and payloads are open objects: unknown fields are accepted (and not required)', () => {
    const event = {
      ...envelope('presence.changed', { ...SAMPLES['presence.changed'], newField: 1 }),
      extra: true,
    };
    expect(FleetEvent.safeParse(event).success).toBe(true);
    expect(
      FleetListOutput.safeParse({ items: [event], lastEventId: '42', hasMore: false, more: 1 })
        .success,
    ).toBe(true);
  });

  it('fleetEvent builds a typed payload and refuses one that does not match its type', () => {
    const built = fleetEvent('presence.changed', {
      from: 'online',
      to: 'degraded',
      cause: 'sweep',
    });
    expect(built).toEqual({
      type: 'presence.changed',
      data: { from: 'online', to: 'degraded', cause: 'sweep' },
    });
    expect(() =>
      fleetEvent('presence.changed', { from: 'online', to: 'degraded', cause: 'nap' as never }),
    ).toThrow(/presence\.changed: payload does not match the contract/);
    expect(() =>
      fleetEvent('node.updated', { changed: [], by: SAMPLES['node.updated'].by }),
    ).toThrow(/node\.updated/);
  });

  it('the snapshots of fleet.events and fleet.list carry every event type and its payload', () => {
    const files = renderSnapshotFiles(WIRE_PROCEDURES, CONTRACT_VERSION);
    for (const name of ['fleet.events.json', 'fleet.list.json']) {
      const text = files.get(name)!;
      for (const type of FleetEventType.options) expect(text, name).toContain(`"const": "${type}"`);
      expect(text).toContain('"pairingCode"');
      expect(text).toContain('"attachmentsRevoked"');
    }
  });
});

describe('compatibility of event payloads', () => {
  /** fleet.events with one event type's payload replaced. */
  function withPayload(type: FleetEventType, data: z.ZodType): Record<string, WireProcedure> {
    const branches = FleetEvent.options.map((branch) =>
      branch.shape.type.value === type ? branch.extend({ data }) : branch,
    );
    const output = z.discriminatedUnion(
      'type',
      branches as unknown as [z.ZodObject<{ type: z.ZodLiteral<string> }>],
    );
    return { 'fleet.events': { ...WIRE_PROCEDURES['fleet.events'], output } };
  }

  /** The classifier's verdict on a change of the contract, and whether the same version may ship it. */
  function check(after: Map<string, string>, before: Map<string, string>) {
    const changes = classifySnapshotChanges(before, after);
    const summary = summarizeCompatChanges(changes);
    const ok = allowedVersionsAfter(CONTRACT_VERSION, summary.severity).includes(CONTRACT_VERSION);
    return { changes, summary, ok };
  }

  const before = renderSnapshotFiles(
    { 'fleet.events': WIRE_PROCEDURES['fleet.events'] },
    CONTRACT_VERSION,
  );

  it('renaming a payload field (presence.changed cause → reason) is breaking and needs MAJOR', () => {
    const renamed = PresenceChangedPayload.omit({ cause: true }).extend({ reason: PresenceCause });
    const after = renderSnapshotFiles(withPayload('presence.changed', renamed), CONTRACT_VERSION);
    const verdict = check(after, before);
    const lines = verdict.changes.map(formatCompatChange);
    expect(lines).toContain(
      'BREAKING fleet.events output /data/cause: field removed (old clients still read it)',
    );
    expect(verdict.summary.bump).toBe('major');
    expect(verdict.ok).toBe(false);
  });

  it('adding a payload field is additive (MINOR)', () => {
    const grown = PresenceChangedPayload.extend({ connectionId: z.string().nullable() });
    const after = renderSnapshotFiles(withPayload('presence.changed', grown), CONTRACT_VERSION);
    const verdict = check(after, before);
    expect(verdict.changes.map(formatCompatChange)).toEqual([
      'ADDITIVE fleet.events output /data/connectionId: field added',
    ]);
    expect(verdict.summary.bump).toBe('minor');
  });

  it("changing a payload field's type is breaking", () => {
    const retyped = PresenceChangedPayload.extend({ cause: z.number() });
    const after = renderSnapshotFiles(withPayload('presence.changed', retyped), CONTRACT_VERSION);
    const verdict = check(after, before);
    expect(verdict.summary.bump).toBe('major');
    expect(verdict.changes.every((c: { path: string }) => c.path.startsWith('/data/cause'))).toBe(
      true,
    );
  });
});
