/**
 * The object policy of the published contract, for every procedure: inputs are strict (no plain
 * `z.object`, which would silently drop unknown keys), outputs are open (no `z.strictObject`,
 * which would make every added field breaking) — and what is published agrees with what the
 * runtime schemas do with an unknown key.
 */
import { describe, expect, it } from 'vitest';
import { WIRE_PROCEDURES, buildProcedureSnapshot } from '../src/index.js';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface ObjectNode {
  path: string;
  additionalProperties: unknown;
}

/** Every object schema with declared properties, with its JSON-pointer-ish path. */
function objectNodes(schema: unknown, path = ''): ObjectNode[] {
  if (Array.isArray(schema)) return schema.flatMap((item, i) => objectNodes(item, `${path}/${i}`));
  if (!isPlainObject(schema)) return [];
  const own: ObjectNode[] =
    schema.type === 'object' && isPlainObject(schema.properties)
      ? [{ path: path || '/', additionalProperties: schema.additionalProperties }]
      : [];
  return [
    ...own,
    ...Object.entries(schema).flatMap(([key, value]) => objectNodes(value, `${path}/${key}`)),
  ];
}

describe('wire object policy', () => {
  const snapshots = Object.entries(WIRE_PROCEDURES).map(([name, definition]) =>
    buildProcedureSnapshot(name, definition),
  );

  it('every input object is strict or deliberately loose (never a key-dropping z.object)', () => {
    const open = snapshots.flatMap((s) =>
      objectNodes(s.input)
        .filter((node) => node.additionalProperties === undefined)
        .map((node) => `${s.procedure} input ${node.path}`),
    );
    expect(open).toEqual([]);
  });

  it('every output object is open (never additionalProperties: false)', () => {
    const closed = snapshots.flatMap((s) =>
      objectNodes(s.output)
        .filter((node) => node.additionalProperties === false)
        .map((node) => `${s.procedure} output ${node.path}`),
    );
    expect(closed).toEqual([]);
  });

  it('the policy test sees the objects it checks (a procedure with nested objects on both sides)', () => {
    const attach = snapshots.find((s) => s.procedure === 'runtimenode.capabilityupdate')!;
    expect(objectNodes(attach.input).length).toBeGreaterThan(1);
    const list = snapshots.find((s) => s.procedure === 'node.list')!;
    expect(objectNodes(list.output).length).toBeGreaterThan(2);
  });

  it('runtime agrees with the published schema: an output parse keeps working with an unknown key (and drops it); an input parse refuses one', () => {
    const { output, input } = WIRE_PROCEDURES['runtimenode.attach'];
    const attached = {
      attachmentId: '0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e',
      state: 'online',
      readOnly: false,
      attachedAt: new Date('2025-01-02T03:04:05.678Z'),
    };
    expect(output.parse({ ...attached, addedLater: 1 })).toEqual(attached);
    const attach = {
      sessionId: '3f0b7f4e-8a4b-4c1e-9d2a-1b2c3d4e5f60',
      participantId: '9a1c2b3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d',
      nodeId: 'node-1',
      nodeVersion: '1.0',
      capabilities: {},
      healthState: 'online',
    };
    expect(input.safeParse(attach).success).toBe(true);
    const refused = input.safeParse({ ...attach, addedLater: 1 });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.code).toBe('unrecognized_keys');
  });
});
