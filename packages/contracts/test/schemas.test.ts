import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  AttachInput,
  AttachOutput,
  CAPABILITIES_MAX_BYTES,
  CAPABILITIES_MAX_KEYS,
  Capabilities,
  CapabilityName,
  CapabilityUpdateInput,
  CapabilityUpdateOutput,
  DetachInput,
  HealthChange,
  HeartbeatInput,
  HeartbeatMetrics,
  METRICS_MAX_GAUGES,
  MembershipAddInput,
  MembershipRemoveInput,
  MembershipUpdateInput,
  MembershipView,
  NodeId,
  RevokeAttachmentInput,
  RosterInput,
  RosterOutput,
  SessionCreateInput,
  SessionRaiseFloorInput,
  SessionView,
} from '../src/index.js';

const SESSION = '3f0b7f4e-8a4b-4c1e-9d2a-1b2c3d4e5f60';
const PARTICIPANT = '9a1c2b3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d';
const ATTACHMENT = '0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e';
const MEMBERSHIP = '1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a';
const NOW = new Date('2025-01-02T03:04:05.678Z');

const validAttach = {
  sessionId: SESSION,
  participantId: PARTICIPANT,
  nodeId: 'node-1',
  nodeVersion: '1.0',
  capabilities: { 'fs.read': { description: 'read files' } },
  healthState: 'online',
};

const rosterEntry = {
  nodeId: 'node-1',
  participantId: PARTICIPANT,
  state: 'online',
  healthState: 'offline',
  lastHeartbeatAt: null,
  readOnly: false,
  capabilities: {},
  nodeVersion: '1.2',
  attachedAt: NOW,
  metrics: null,
  metricsReportedAt: null,
};

const sessionView = {
  sessionId: SESSION,
  name: 'demo',
  state: 'active',
  minNodeVersion: null,
  createdBy: PARTICIPANT,
  createdAt: NOW,
  updatedAt: NOW,
};

/** Every strict object schema on the wire, each with a value it accepts. */
const SAMPLES: ReadonlyArray<readonly [string, z.ZodType, Record<string, unknown>]> = [
  ['AttachInput', AttachInput, validAttach],
  [
    'AttachOutput',
    AttachOutput,
    { attachmentId: ATTACHMENT, state: 'registering', readOnly: false, attachedAt: NOW },
  ],
  ['HeartbeatInput', HeartbeatInput, { nodeId: 'node-1', healthState: 'degraded' }],
  ['HeartbeatMetrics', HeartbeatMetrics, { cpuPercent: 12.5, gauges: { 'queue.depth': 3 } }],
  ['HealthChange', HealthChange, { state: 'degraded', reason: 'disk' }],
  ['CapabilityUpdateInput', CapabilityUpdateInput, { nodeId: 'node-1', capabilities: {} }],
  [
    'CapabilityUpdateOutput',
    CapabilityUpdateOutput,
    { nodeId: 'node-1', state: 'online', updatedAt: NOW },
  ],
  ['DetachInput', DetachInput, { nodeId: 'node-1' }],
  ['RosterInput', RosterInput, { sessionId: SESSION }],
  ['RosterOutput', RosterOutput, { nodes: [rosterEntry] }],
  ['RevokeAttachmentInput', RevokeAttachmentInput, { sessionId: SESSION, nodeId: 'node-1' }],
  ['SessionCreateInput', SessionCreateInput, { name: 'demo' }],
  ['SessionView', SessionView, sessionView],
  ['SessionRaiseFloorInput', SessionRaiseFloorInput, { sessionId: SESSION, minNodeVersion: '2.0' }],
  [
    'MembershipView',
    MembershipView,
    {
      membershipId: MEMBERSHIP,
      sessionId: SESSION,
      participantId: PARTICIPANT,
      role: 'viewer',
      state: 'active',
      joinedAt: NOW,
      updatedAt: NOW,
    },
  ],
  [
    'MembershipAddInput',
    MembershipAddInput,
    { sessionId: SESSION, participantId: PARTICIPANT, role: 'owner' },
  ],
  [
    'MembershipUpdateInput',
    MembershipUpdateInput,
    { sessionId: SESSION, participantId: PARTICIPANT },
  ],
  [
    'MembershipRemoveInput',
    MembershipRemoveInput,
    { sessionId: SESSION, participantId: PARTICIPANT },
  ],
];

function issueCodes(schema: z.ZodType, value: unknown): string[] {
  const result = schema.safeParse(value);
  return result.success ? [] : result.error.issues.map((issue) => issue.code);
}

const OUTPUT_NAMES = new Set([
  'AttachOutput',
  'CapabilityUpdateOutput',
  'RosterOutput',
  'SessionView',
  'MembershipView',
]);

describe('strict inputs, open outputs', () => {
  it.each(SAMPLES.filter(([name]) => !OUTPUT_NAMES.has(name)))(
    'input %s accepts its valid sample and rejects an unknown key',
    (_name, schema, sample) => {
      expect(schema.safeParse(sample).success).toBe(true);
      expect(issueCodes(schema, { ...sample, unexpected: true })).toContain('unrecognized_keys');
    },
  );

  it.each(SAMPLES.filter(([name]) => OUTPUT_NAMES.has(name)))(
    'output %s accepts its valid sample, and also one with an unknown key, which it drops',
    (_name, schema, sample) => {
      expect(schema.safeParse(sample).success).toBe(true);
      expect(schema.parse({ ...sample, addedLater: true })).toEqual(schema.parse(sample));
    },
  );

  it('an output array item with an unknown key is accepted and the key dropped', () => {
    expect(RosterOutput.parse({ nodes: [{ ...rosterEntry, extra: 1 }] })).toEqual(
      RosterOutput.parse({ nodes: [rosterEntry] }),
    );
  });
});

describe('NodeId', () => {
  it('accepts 1..256 characters of the allowed alphabet', () => {
    for (const id of ['a', '0', 'node-1', 'host.example:8080', 'A_b-c.d:e', 'x'.repeat(256)]) {
      expect(NodeId.safeParse(id).success, id).toBe(true);
    }
  });

  it('rejects empty, 257 characters, a leading ".", "-", "_" or ":", spaces and other characters', () => {
    for (const id of [
      '',
      'x'.repeat(257),
      '.node',
      '-node',
      '_node',
      ':node',
      'a b',
      ' node',
      'node ',
      'nöde',
      'a/b',
      'a\n',
    ]) {
      expect(NodeId.safeParse(id).success, JSON.stringify(id)).toBe(false);
    }
  });
});

describe('capabilities', () => {
  it('capability names follow ^[a-z][a-z0-9._-]{0,127}$', () => {
    for (const name of ['a', 'fs.read', 'net_http-2', 'a'.repeat(128)]) {
      expect(CapabilityName.safeParse(name).success, name).toBe(true);
      expect(Capabilities.safeParse({ [name]: {} }).success, name).toBe(true);
    }
    for (const name of ['', 'A', 'Fs', '1a', '.a', 'a b', 'a/b', 'a'.repeat(129)]) {
      expect(CapabilityName.safeParse(name).success, name).toBe(false);
      expect(Capabilities.safeParse({ [name]: {} }).success, name).toBe(false);
    }
  });

  it('an empty capabilities object is valid, and so is an empty descriptor', () => {
    expect(Capabilities.parse({})).toEqual({});
    expect(Capabilities.parse({ shell: {} })).toEqual({ shell: {} });
  });

  it('a descriptor keeps extra JSON keys alongside the typed ones', () => {
    const value = {
      shell: {
        description: 'run commands',
        authLevel: 'gated',
        vendor: { name: 'acme', tags: ['a', 1, null, true] },
      },
    };
    expect(Capabilities.parse(value)).toEqual(value);
  });

  it('typed descriptor fields are still validated', () => {
    expect(Capabilities.safeParse({ shell: { authLevel: 'root' } }).success).toBe(false);
    expect(Capabilities.safeParse({ shell: { commands: [''] } }).success).toBe(false);
    expect(Capabilities.safeParse({ shell: { description: 'x'.repeat(1025) } }).success).toBe(
      false,
    );
  });

  it('extra descriptor keys must be JSON: NaN, Infinity, dates, functions, bigints and array holes are rejected', () => {
    const nonJson: ReadonlyArray<readonly [string, unknown]> = [
      ['NaN', NaN],
      ['Infinity', Infinity],
      ['a Date', new Date(0)],
      ['a function', () => 1],
      ['a bigint', 1n],
      ['an array hole', [undefined]],
      ['a Map', new Map()],
    ];
    for (const [label, extra] of nonJson) {
      expect(Capabilities.safeParse({ shell: { extra } }).success, label).toBe(false);
    }
    // An undefined property is simply absent in JSON.
    expect(Capabilities.safeParse({ shell: { extra: undefined } }).success).toBe(true);
  });

  it(`at most ${CAPABILITIES_MAX_KEYS} keys: ${CAPABILITIES_MAX_KEYS} accepted, ${CAPABILITIES_MAX_KEYS + 1} rejected`, () => {
    const make = (count: number): Record<string, object> =>
      Object.fromEntries(Array.from({ length: count }, (_, i) => [`cap${i}`, {}]));
    expect(Capabilities.safeParse(make(CAPABILITIES_MAX_KEYS)).success).toBe(true);
    expect(Capabilities.safeParse(make(CAPABILITIES_MAX_KEYS + 1)).success).toBe(false);
  });

  it('at most 64 KiB serialised: exactly at the limit accepted, one byte over rejected, counted in UTF-8 bytes', () => {
    const withPayload = (payload: string) => ({ blob: { note: payload } });
    const overhead = Buffer.byteLength(JSON.stringify(withPayload('')), 'utf8');
    const atLimit = withPayload('x'.repeat(CAPABILITIES_MAX_BYTES - overhead));
    const overLimit = withPayload('x'.repeat(CAPABILITIES_MAX_BYTES - overhead + 1));
    expect(Buffer.byteLength(JSON.stringify(atLimit), 'utf8')).toBe(CAPABILITIES_MAX_BYTES);
    expect(Capabilities.safeParse(atLimit).success).toBe(true);
    expect(Capabilities.safeParse(overLimit).success).toBe(false);
    // Two-byte characters: fewer characters than the limit, more bytes than it.
    const multiByte = withPayload('é'.repeat((CAPABILITIES_MAX_BYTES - overhead) / 2 + 1));
    expect(JSON.stringify(multiByte).length).toBeLessThan(CAPABILITIES_MAX_BYTES);
    expect(Capabilities.safeParse(multiByte).success).toBe(false);
  });
});

describe('heartbeat', () => {
  it("a node may report 'online' or 'degraded' but never 'offline'", () => {
    expect(HeartbeatInput.safeParse({ nodeId: 'n', healthState: 'online' }).success).toBe(true);
    expect(HeartbeatInput.safeParse({ nodeId: 'n', healthState: 'degraded' }).success).toBe(true);
    expect(HeartbeatInput.safeParse({ nodeId: 'n', healthState: 'offline' }).success).toBe(false);
    expect(AttachInput.safeParse({ ...validAttach, healthState: 'offline' }).success).toBe(false);
    expect(HealthChange.safeParse({ state: 'offline' }).success).toBe(false);
  });

  it(`metrics: ${METRICS_MAX_GAUGES} gauges accepted, ${METRICS_MAX_GAUGES + 1} rejected`, () => {
    const gauges = (count: number) =>
      Object.fromEntries(Array.from({ length: count }, (_, i) => [`g${i}`, i]));
    expect(HeartbeatMetrics.safeParse({ gauges: gauges(METRICS_MAX_GAUGES) }).success).toBe(true);
    expect(HeartbeatMetrics.safeParse({ gauges: gauges(METRICS_MAX_GAUGES + 1) }).success).toBe(
      false,
    );
    expect(
      HeartbeatInput.safeParse({
        nodeId: 'n',
        healthState: 'online',
        metrics: { gauges: gauges(METRICS_MAX_GAUGES + 1) },
      }).success,
    ).toBe(false);
  });

  it('metrics: non-finite numbers are rejected in every field', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      expect(HeartbeatMetrics.safeParse({ cpuPercent: bad }).success).toBe(false);
      expect(HeartbeatMetrics.safeParse({ memoryUsedBytes: bad }).success).toBe(false);
      expect(HeartbeatMetrics.safeParse({ uptimeSeconds: bad }).success).toBe(false);
      expect(HeartbeatMetrics.safeParse({ gauges: { load: bad } }).success).toBe(false);
    }
    expect(HeartbeatMetrics.safeParse({ memoryUsedBytes: -1 }).success).toBe(false);
  });

  it('metrics: an unknown metric key or a malformed gauge name is rejected', () => {
    expect(issueCodes(HeartbeatMetrics, { diskPercent: 3 })).toContain('unrecognized_keys');
    expect(HeartbeatMetrics.safeParse({ gauges: { Load: 1 } }).success).toBe(false);
    expect(HeartbeatMetrics.safeParse({ gauges: { 'load avg': 1 } }).success).toBe(false);
  });
});

describe('node version on the wire', () => {
  it('an invalid nodeVersion is rejected', () => {
    for (const nodeVersion of ['1', '1.0.0', '01.0', 'v1.0', '', ' 1.0', 1]) {
      expect(
        AttachInput.safeParse({ ...validAttach, nodeVersion }).success,
        String(nodeVersion),
      ).toBe(false);
    }
    expect(AttachInput.safeParse({ ...validAttach, nodeVersion: '12.345' }).success).toBe(true);
  });

  it('an invalid minNodeVersion is rejected when creating a session or raising its floor', () => {
    expect(SessionCreateInput.safeParse({ name: 'x', minNodeVersion: '1.01' }).success).toBe(false);
    expect(
      SessionRaiseFloorInput.safeParse({ sessionId: SESSION, minNodeVersion: '2' }).success,
    ).toBe(false);
  });
});
