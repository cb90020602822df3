import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  WIRE_PROCEDURES,
  allowedVersionsAfter,
  publishedJsonSchema,
  classifyContractChanges,
  classifySchemaChange,
  summarizeCompatChanges,
  type CompatChange,
  type JsonSchema,
  type ProcedureContract,
} from '../src/index.js';

type Direction = 'input' | 'output';

/** Runs a before/after pair of real Zod schemas through their published JSON Schema and the classifier. */
function classify(before: z.ZodType, after: z.ZodType, direction: Direction): CompatChange[] {
  return classifySchemaChange(
    publishedJsonSchema(before, direction),
    publishedJsonSchema(after, direction),
    {
      procedure: 'test.proc',
      direction,
    },
  );
}

function classifyRaw(before: JsonSchema, after: JsonSchema, direction: Direction): CompatChange[] {
  return classifySchemaChange(before, after, { procedure: 'test.proc', direction });
}

/** The single change a pair produces, as (severity, kind, path). */
function single(
  changes: readonly CompatChange[],
): Pick<CompatChange, 'severity' | 'kind' | 'path'> {
  expect(changes, JSON.stringify(changes, null, 2)).toHaveLength(1);
  const [change] = changes;
  return { severity: change!.severity, kind: change!.kind, path: change!.path };
}

const Base = z.strictObject({ nodeId: z.string(), reason: z.string().optional() });

describe('fields', () => {
  it('removed field: breaking on input and on output', () => {
    const after = z.strictObject({ nodeId: z.string() });
    for (const direction of ['input', 'output'] as const) {
      expect(single(classify(Base, after, direction))).toEqual({
        severity: 'breaking',
        kind: 'field-removed',
        path: '/reason',
      });
    }
  });

  it('added optional input field: additive', () => {
    const after = Base.extend({ note: z.string().optional() });
    expect(single(classify(Base, after, 'input'))).toEqual({
      severity: 'additive',
      kind: 'field-added',
      path: '/note',
    });
  });

  it('added required input field: breaking', () => {
    const after = Base.extend({ note: z.string() });
    expect(single(classify(Base, after, 'input'))).toEqual({
      severity: 'breaking',
      kind: 'required-field-added',
      path: '/note',
    });
  });

  it('added field on an open output object (z.object, published without additionalProperties): additive', () => {
    const Open = z.object({ nodeId: z.string(), reason: z.string().optional() });
    for (const field of [z.string(), z.string().optional()]) {
      expect(single(classify(Open, Open.extend({ note: field }), 'output'))).toEqual({
        severity: 'additive',
        kind: 'field-added',
        path: '/note',
      });
    }
  });

  it('added field on a closed output object (strictObject): breaking, old clients validating it reject the field', () => {
    const changes = classify(Base, Base.extend({ note: z.string() }), 'output');
    expect(single(changes)).toEqual({ severity: 'breaking', kind: 'field-added', path: '/note' });
    expect(changes[0]!.message).toContain('closed');
  });

  it('added field on an output object whose extra keys had a schema: additive within it, breaking outside it', () => {
    const before: JsonSchema = {
      type: 'object',
      properties: { a: { type: 'string' } },
      additionalProperties: { type: 'string' },
    };
    const within: JsonSchema = {
      ...before,
      properties: { a: { type: 'string' }, b: { type: 'string', maxLength: 3 } },
    };
    const outside: JsonSchema = {
      ...before,
      properties: { a: { type: 'string' }, b: { type: 'number' } },
    };
    expect(single(classifyRaw(before, within, 'output'))).toEqual({
      severity: 'additive',
      kind: 'field-added',
      path: '/b',
    });
    expect(single(classifyRaw(before, outside, 'output'))).toEqual({
      severity: 'breaking',
      kind: 'type-changed',
      path: '/b',
    });
  });

  it('added optional field on an open input object: breaking unless it accepts anything (old clients may already send that key)', () => {
    const Open = z.looseObject({ a: z.string() });
    expect(
      single(classify(Open, Open.extend({ b: z.string().optional() }), 'input')),
    ).toMatchObject({ severity: 'breaking', path: '/b' });
    const before: JsonSchema = { type: 'object', properties: { a: { type: 'string' } } };
    const anything: JsonSchema = { ...before, properties: { a: { type: 'string' }, b: {} } };
    expect(single(classifyRaw(before, anything, 'input'))).toEqual({
      severity: 'additive',
      kind: 'field-added',
      path: '/b',
    });
  });

  it('output object opened (strictObject → object): additive; closed (object → strictObject): additive but later additions break', () => {
    const strict = z.strictObject({ a: z.string() });
    const open = z.object({ a: z.string() });
    const opened = classify(strict, open, 'output');
    expect(single(opened)).toEqual({
      severity: 'additive',
      kind: 'constraint-loosened',
      path: '/',
    });
    expect(single(classify(open, strict, 'output'))).toMatchObject({ severity: 'additive' });
    // Opened and a field added in one step: old clients still validate the closed schema.
    const both = classify(strict, open.extend({ b: z.string() }), 'output');
    expect(both.map((c) => [c.path, c.severity])).toEqual([
      ['/b', 'breaking'],
      ['/', 'additive'],
    ]);
  });

  it('removed input field names the reason: a strict input now rejects it as an unrecognized key', () => {
    const changes = classify(Base, z.strictObject({ nodeId: z.string() }), 'input');
    expect(changes[0]!.message).toContain('unrecognized key');
  });

  it('optional→required on input: breaking; required→optional on input: additive', () => {
    const required = z.strictObject({ nodeId: z.string(), reason: z.string() });
    expect(single(classify(Base, required, 'input'))).toEqual({
      severity: 'breaking',
      kind: 'field-became-required',
      path: '/reason',
    });
    expect(single(classify(required, Base, 'input'))).toEqual({
      severity: 'additive',
      kind: 'field-became-optional',
      path: '/reason',
    });
  });

  it('required→optional on output: breaking; optional→required on output: additive', () => {
    const required = z.strictObject({ nodeId: z.string(), reason: z.string() });
    expect(single(classify(required, Base, 'output'))).toEqual({
      severity: 'breaking',
      kind: 'field-became-optional',
      path: '/reason',
    });
    expect(single(classify(Base, required, 'output'))).toEqual({
      severity: 'additive',
      kind: 'field-became-required',
      path: '/reason',
    });
  });
});

describe('enums', () => {
  const abc = z.object({ role: z.enum(['a', 'b', 'c']) });
  const ab = z.object({ role: z.enum(['a', 'b']) });

  it('narrowed input enum (value removed): breaking, naming the value', () => {
    const changes = classify(abc, ab, 'input');
    expect(single(changes)).toEqual({ severity: 'breaking', kind: 'enum-narrowed', path: '/role' });
    expect(changes[0]!.message).toContain('"c"');
  });

  it('widened input enum: additive', () => {
    expect(single(classify(ab, abc, 'input'))).toEqual({
      severity: 'additive',
      kind: 'enum-widened',
      path: '/role',
    });
  });

  it('widened output enum: breaking (old clients may not know the value)', () => {
    expect(single(classify(ab, abc, 'output'))).toEqual({
      severity: 'breaking',
      kind: 'enum-widened',
      path: '/role',
    });
  });

  it('narrowed output enum: additive', () => {
    expect(single(classify(abc, ab, 'output'))).toEqual({
      severity: 'additive',
      kind: 'enum-narrowed',
      path: '/role',
    });
  });

  it('an enum value both added and removed is breaking in either direction', () => {
    const ad = z.object({ role: z.enum(['a', 'd']) });
    for (const direction of ['input', 'output'] as const) {
      const changes = classify(ab, ad, direction);
      expect(changes.map((c) => c.kind).sort()).toEqual(['enum-narrowed', 'enum-widened']);
      expect(summarizeCompatChanges(changes).severity).toBe('breaking');
    }
  });

  it('a union of literals is treated as an enum: widened on output is breaking', () => {
    const before = z.union([z.literal('a'), z.literal('b')]);
    const after = z.union([z.literal('a'), z.literal('b'), z.literal('c')]);
    expect(single(classify(before, after, 'output'))).toEqual({
      severity: 'breaking',
      kind: 'enum-widened',
      path: '/',
    });
    expect(single(classify(before, after, 'input'))).toEqual({
      severity: 'additive',
      kind: 'enum-widened',
      path: '/',
    });
  });
});

describe('types', () => {
  it('type change string→number: breaking on input and output', () => {
    for (const direction of ['input', 'output'] as const) {
      expect(
        single(classify(z.object({ n: z.string() }), z.object({ n: z.number() }), direction)),
      ).toEqual({
        severity: 'breaking',
        kind: 'type-changed',
        path: '/n',
      });
    }
  });

  it('type change object→array: breaking', () => {
    const before = z.object({ v: z.object({ x: z.string() }) });
    const after = z.object({ v: z.array(z.string()) });
    expect(single(classify(before, after, 'input'))).toMatchObject({
      severity: 'breaking',
      kind: 'type-changed',
    });
  });

  it('type change null→object (z.null() output becomes an object): breaking', () => {
    expect(single(classify(z.null(), z.strictObject({ ok: z.boolean() }), 'output'))).toEqual({
      severity: 'breaking',
      kind: 'type-changed',
      path: '/',
    });
  });

  it('adding null: additive on input, breaking on output (simple and anyOf forms)', () => {
    const pairs: Array<readonly [z.ZodType, z.ZodType]> = [
      [z.object({ t: z.string() }), z.object({ t: z.string().nullable() })],
      [z.object({ t: z.iso.datetime() }), z.object({ t: z.iso.datetime().nullable() })],
    ];
    for (const [before, after] of pairs) {
      expect(single(classify(before, after, 'input'))).toEqual({
        severity: 'additive',
        kind: 'nullable-added',
        path: '/t',
      });
      expect(single(classify(before, after, 'output'))).toEqual({
        severity: 'breaking',
        kind: 'nullable-added',
        path: '/t',
      });
    }
  });

  it('removing null: breaking on input, additive on output', () => {
    const before = z.object({ t: z.iso.datetime().nullable() });
    const after = z.object({ t: z.iso.datetime() });
    expect(single(classify(before, after, 'input'))).toEqual({
      severity: 'breaking',
      kind: 'nullable-removed',
      path: '/t',
    });
    expect(single(classify(before, after, 'output'))).toEqual({
      severity: 'additive',
      kind: 'nullable-removed',
      path: '/t',
    });
  });

  it('integer→number widens (raw JSON Schema): additive on input, breaking on output', () => {
    expect(single(classifyRaw({ type: 'integer' }, { type: 'number' }, 'input'))).toEqual({
      severity: 'additive',
      kind: 'type-widened',
      path: '/',
    });
    expect(single(classifyRaw({ type: 'integer' }, { type: 'number' }, 'output'))).toMatchObject({
      severity: 'breaking',
    });
  });
});

describe('constraints', () => {
  it('tightened maxLength on input: breaking; loosened: additive; on output the mirror', () => {
    const long = z.object({ name: z.string().max(200) });
    const short = z.object({ name: z.string().max(100) });
    expect(single(classify(long, short, 'input'))).toEqual({
      severity: 'breaking',
      kind: 'constraint-tightened',
      path: '/name',
    });
    expect(single(classify(short, long, 'input'))).toEqual({
      severity: 'additive',
      kind: 'constraint-loosened',
      path: '/name',
    });
    expect(single(classify(long, short, 'output'))).toMatchObject({ severity: 'additive' });
    expect(single(classify(short, long, 'output'))).toMatchObject({ severity: 'breaking' });
  });

  it('raised minLength / lowered maximum / lowered maxItems on input: breaking', () => {
    const pairs: Array<readonly [z.ZodType, z.ZodType]> = [
      [z.string().min(1), z.string().min(2)],
      [z.number().max(10), z.number().max(9)],
      [z.number().lte(5), z.number().lt(5)],
      [z.array(z.string()).max(5), z.array(z.string()).max(4)],
      [z.number(), z.number().min(0)],
    ];
    for (const [before, after] of pairs) {
      expect(single(classify(before, after, 'input'))).toMatchObject({
        severity: 'breaking',
        kind: 'constraint-tightened',
      });
      expect(single(classify(after, before, 'input'))).toMatchObject({
        severity: 'additive',
        kind: 'constraint-loosened',
      });
    }
  });

  it('pattern changed: breaking in both directions; pattern added on input: breaking', () => {
    const before = z.string().regex(/^[a-z]+$/);
    const after = z.string().regex(/^[a-z0-9]+$/);
    for (const direction of ['input', 'output'] as const) {
      expect(single(classify(before, after, direction))).toMatchObject({
        severity: 'breaking',
        kind: 'constraint-changed',
      });
    }
    expect(single(classify(z.string(), before, 'input'))).toMatchObject({
      severity: 'breaking',
      kind: 'constraint-tightened',
    });
    expect(single(classify(before, z.string(), 'input'))).toMatchObject({
      severity: 'additive',
      kind: 'constraint-loosened',
    });
  });

  it('a pattern respelled without changing what it matches (escaped vs plain slash) is not a change', () => {
    const pattern = (source: string): JsonSchema => ({ type: 'string', pattern: source });
    expect(classifyRaw(pattern('^a\\/b$'), pattern('^a/b$'), 'input')).toEqual([]);
    const escaped = z.string().regex(new RegExp('^[a\\/]+$'));
    expect(classify(escaped, z.string().regex(/^[a/]+$/), 'input')).toEqual([]);
    // An escaped backslash followed by "/" is the same as an escaped backslash followed by "\/" ...
    expect(classifyRaw(pattern('^a\\\\/$'), pattern('^a\\\\\\/$'), 'input')).toEqual([]);
    // ... but not the same as two escaped backslashes.
    expect(
      single(classifyRaw(pattern('^a\\\\\\/$'), pattern('^a\\\\\\\\$'), 'input')),
    ).toMatchObject({
      kind: 'constraint-changed',
      severity: 'breaking',
    });
  });

  it('additionalProperties true→false on input (object → strictObject): breaking; false→true: additive', () => {
    const loose = z.object({ a: z.string() });
    const strict = z.strictObject({ a: z.string() });
    expect(single(classify(loose, strict, 'input'))).toEqual({
      severity: 'breaking',
      kind: 'constraint-tightened',
      path: '/',
    });
    expect(single(classify(strict, loose, 'input'))).toEqual({
      severity: 'additive',
      kind: 'constraint-loosened',
      path: '/',
    });
    expect(single(classify(z.looseObject({ a: z.string() }), strict, 'output'))).toMatchObject({
      severity: 'additive',
    });
  });

  it('a changed input default is breaking (old clients that omit the field get different behaviour)', () => {
    const before = z.object({ limit: z.number().default(10) });
    const after = z.object({ limit: z.number().default(20) });
    expect(single(classify(before, after, 'input'))).toEqual({
      severity: 'breaking',
      kind: 'default-changed',
      path: '/limit',
    });
  });
});

describe('paths and structure', () => {
  it('nested path reported correctly through objects and arrays', () => {
    const shape = (leaf: z.ZodType) =>
      z.object({ a: z.object({ b: z.array(z.object({ c: leaf })) }) });
    expect(single(classify(shape(z.string()), shape(z.number()), 'input'))).toEqual({
      severity: 'breaking',
      kind: 'type-changed',
      path: '/a/b/[]/c',
    });
  });

  it('record values are reported under /*, record keys under /{key}', () => {
    const before = z.object({ caps: z.record(z.string(), z.object({ x: z.string() })) });
    const after = z.object({
      caps: z.record(z.string().max(8), z.object({ x: z.string(), y: z.string() })),
    });
    const changes = classify(before, after, 'input');
    expect(changes.map((c) => [c.path, c.kind, c.severity])).toEqual([
      ['/caps/*/y', 'required-field-added', 'breaking'],
      ['/caps/{key}', 'constraint-tightened', 'breaking'],
    ]);
  });

  it('field names with "/" and "~" are escaped as in a JSON pointer', () => {
    const before = z.object({ 'a/b': z.object({ 'c~d': z.string() }) });
    const after = z.object({ 'a/b': z.object({ 'c~d': z.number() }) });
    expect(single(classify(before, after, 'input')).path).toBe('/a~1b/c~0d');
  });

  it('a new discriminated-union variant: additive on input, breaking on output; a changed variant is compared field by field', () => {
    const a = z.object({ t: z.literal('a'), x: z.string() });
    const b = z.object({ t: z.literal('b') });
    const c = z.object({ t: z.literal('c'), y: z.number() });
    const before = z.discriminatedUnion('t', [a, b]);
    expect(single(classify(before, z.discriminatedUnion('t', [a, b, c]), 'input'))).toEqual({
      severity: 'additive',
      kind: 'union-widened',
      path: '/',
    });
    expect(single(classify(before, z.discriminatedUnion('t', [a, b, c]), 'output'))).toMatchObject({
      severity: 'breaking',
    });
    const changed = z.discriminatedUnion('t', [a.extend({ x: z.string().max(3) }), b]);
    expect(single(classify(before, changed, 'input'))).toEqual({
      severity: 'breaking',
      kind: 'constraint-tightened',
      path: '/x',
    });
  });

  it('anyOf/oneOf that cannot be proven compatible is reported as a breaking unclassified-change', () => {
    // Overlapping oneOf branches: a new branch can make a value match twice.
    const before: JsonSchema = { oneOf: [{ type: 'string' }, { type: 'string', maxLength: 3 }] };
    const after: JsonSchema = {
      oneOf: [
        { type: 'string' },
        { type: 'string', maxLength: 3 },
        { type: 'string', minLength: 9 },
      ],
    };
    expect(single(classifyRaw(before, after, 'input'))).toMatchObject({
      severity: 'breaking',
      kind: 'unclassified-change',
    });
    // Two alternatives changed into two others of the same shape: no way to pair old with new.
    const twoBefore: JsonSchema = {
      anyOf: [
        { type: 'string', maxLength: 1 },
        { type: 'string', maxLength: 2 },
      ],
    };
    const twoAfter: JsonSchema = {
      anyOf: [
        { type: 'string', maxLength: 3 },
        { type: 'string', maxLength: 4 },
      ],
    };
    expect(single(classifyRaw(twoBefore, twoAfter, 'input'))).toMatchObject({
      severity: 'breaking',
      kind: 'unclassified-change',
    });
  });

  it('an unknown keyword that changed is a breaking unclassified-change', () => {
    expect(
      single(
        classifyRaw(
          { type: 'string', not: { const: 'a' } },
          { type: 'string', not: { const: 'b' } },
          'input',
        ),
      ),
    ).toEqual({
      severity: 'breaking',
      kind: 'unclassified-change',
      path: '/',
    });
  });

  it('local $ref/$defs are resolved and compared by content, not by name', () => {
    const before: JsonSchema = {
      type: 'object',
      properties: { id: { $ref: '#/$defs/Id' } },
      required: ['id'],
      $defs: { Id: { type: 'string', maxLength: 10 } },
    };
    const renamed: JsonSchema = {
      type: 'object',
      properties: { id: { $ref: '#/$defs/Identifier' } },
      required: ['id'],
      $defs: { Identifier: { type: 'string', maxLength: 10 } },
    };
    const tightened: JsonSchema = { ...before, $defs: { Id: { type: 'string', maxLength: 5 } } };
    expect(classifyRaw(before, renamed, 'input')).toEqual([]);
    expect(single(classifyRaw(before, tightened, 'input'))).toEqual({
      severity: 'breaking',
      kind: 'constraint-tightened',
      path: '/id',
    });
  });

  it('an unresolvable $ref that changed is a breaking unclassified-change', () => {
    expect(
      single(classifyRaw({ $ref: '#/$defs/Missing' }, { type: 'string' }, 'input')),
    ).toMatchObject({
      severity: 'breaking',
      kind: 'unclassified-change',
    });
  });
});

describe('recursion', () => {
  it('recursive $defs (z.json()) does not loop, and a change inside it is still found', () => {
    const before = z.strictObject({ data: z.json() });
    expect(classify(before, z.strictObject({ data: z.json() }), 'input')).toEqual([]);
    const changes = classify(
      before,
      z.strictObject({ data: z.json(), extra: z.json().optional() }),
      'input',
    );
    expect(single(changes)).toEqual({ severity: 'additive', kind: 'field-added', path: '/extra' });
    // A recursive structure whose recursive part changed.
    const jsonNoNull: z.ZodType = z.lazy(() => z.union([z.string(), z.array(jsonNoNull)]));
    const narrowed = classify(before, z.strictObject({ data: jsonNoNull }), 'input');
    expect(narrowed.length).toBeGreaterThan(0);
    expect(summarizeCompatChanges(narrowed).severity).toBe('breaking');
  });

  it('z.lazy self-reference ($ref "#") with a change deep inside terminates and reports the change', () => {
    const Tree: z.ZodType = z.lazy(() => z.object({ name: z.string(), kids: z.array(Tree) }));
    const Tree2: z.ZodType = z.lazy(() =>
      z.object({ name: z.string().max(5), kids: z.array(Tree2) }),
    );
    expect(classify(Tree, Tree, 'input')).toEqual([]);
    expect(single(classify(Tree, Tree2, 'input'))).toEqual({
      severity: 'breaking',
      kind: 'constraint-tightened',
      path: '/name',
    });
  });

  it('a $ref cycle with no schema in it is reported, not followed forever', () => {
    const cyclic: JsonSchema = {
      $ref: '#/$defs/A',
      $defs: { A: { $ref: '#/$defs/B' }, B: { $ref: '#/$defs/A' } },
    };
    expect(single(classifyRaw(cyclic, { type: 'string' }, 'input'))).toMatchObject({
      kind: 'unclassified-change',
    });
  });
});

describe('identity', () => {
  it('identical schemas give no changes, for every wire procedure regenerated from scratch', () => {
    for (const [name, procedure] of Object.entries(WIRE_PROCEDURES)) {
      for (const direction of ['input', 'output'] as const) {
        const schema = procedure[direction];
        const changes = classifySchemaChange(
          publishedJsonSchema(schema, direction),
          publishedJsonSchema(schema, direction),
          {
            procedure: name,
            direction,
          },
        );
        expect(changes, `${name} ${direction}`).toEqual([]);
      }
    }
  });

  it('a non-trivial wire schema compared with a copy whose key order differs gives no changes', () => {
    const original = publishedJsonSchema(WIRE_PROCEDURES['runtimenode.attach'].input, 'input');
    const reorder = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(reorder)
        : value !== null && typeof value === 'object'
          ? Object.fromEntries(
              Object.entries(value)
                .reverse()
                .map(([k, v]) => [k, reorder(v)]),
            )
          : value;
    expect(classifyRaw(original, reorder(original) as JsonSchema, 'input')).toEqual([]);
  });
});

describe('procedures', () => {
  const contract = (input: z.ZodType, output: z.ZodType, kind = 'mutation'): ProcedureContract => ({
    kind,
    input: publishedJsonSchema(input, 'input'),
    output: publishedJsonSchema(output, 'output'),
  });

  it('procedure added: additive; procedure removed: breaking; kind changed: breaking', () => {
    const kept = contract(Base, z.null());
    const changes = classifyContractChanges(
      { 'a.kept': kept, 'b.gone': kept, 'c.kind': kept },
      { 'a.kept': kept, 'c.kind': { ...kept, kind: 'query' }, 'd.new': kept },
    );
    expect(changes.map((c) => [c.procedure, c.direction, c.kind, c.severity])).toEqual([
      ['b.gone', 'procedure', 'procedure-removed', 'breaking'],
      ['c.kind', 'procedure', 'procedure-kind-changed', 'breaking'],
      ['d.new', 'procedure', 'procedure-added', 'additive'],
    ]);
  });

  it('changes carry the procedure and direction they belong to', () => {
    const changes = classifyContractChanges(
      { 'x.p': contract(Base, z.object({ a: z.string() })) },
      {
        'x.p': contract(
          Base.extend({ n: z.number().optional() }),
          z.object({ a: z.string(), b: z.string() }),
        ),
      },
    );
    expect(changes.map((c) => [c.procedure, c.direction, c.path, c.severity])).toEqual([
      ['x.p', 'input', '/n', 'additive'],
      ['x.p', 'output', '/b', 'additive'],
    ]);
  });
});

describe('summary and version bump', () => {
  const change = (severity: CompatChange['severity']): CompatChange => ({
    procedure: 'p',
    direction: 'input',
    path: '/',
    kind: 'field-added',
    severity,
    message: '',
  });

  it('summary: no changes → none/none; only additive → additive/minor; any breaking → breaking/major', () => {
    expect(summarizeCompatChanges([])).toEqual({
      severity: 'none',
      bump: 'none',
      additive: 0,
      breaking: 0,
    });
    expect(summarizeCompatChanges([change('additive'), change('additive')])).toEqual({
      severity: 'additive',
      bump: 'minor',
      additive: 2,
      breaking: 0,
    });
    expect(summarizeCompatChanges([change('additive'), change('breaking')])).toEqual({
      severity: 'breaking',
      bump: 'major',
      additive: 1,
      breaking: 1,
    });
  });

  it('summary of real classifications: added optional input → minor; removed field → major', () => {
    expect(
      summarizeCompatChanges(classify(Base, Base.extend({ x: z.string().optional() }), 'input'))
        .bump,
    ).toBe('minor');
    expect(
      summarizeCompatChanges(classify(Base, z.strictObject({ nodeId: z.string() }), 'input')).bump,
    ).toBe('major');
    expect(summarizeCompatChanges(classify(Base, Base, 'input')).bump).toBe('none');
  });

  it('the versions allowed after a release: breaking → next MAJOR; additive → next MINOR or MAJOR; none → also the same', () => {
    expect(allowedVersionsAfter('1.9', 'breaking')).toEqual(['2.0']);
    expect(allowedVersionsAfter('1.9', 'additive')).toEqual(['1.10', '2.0']);
    expect(allowedVersionsAfter('1.9', 'none')).toEqual(['1.9', '1.10', '2.0']);
  });
});
