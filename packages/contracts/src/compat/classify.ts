/**
 * The contract compatibility classifier: compares the before/after JSON Schema of a procedure's
 * input and output (draft 2020-12, as `z.toJSONSchema` produces it) and lists every change with
 * its severity.
 *
 * The model: old clients talk to a new server (and new clients to an old one). A procedure's
 * INPUT must keep accepting everything old clients send, so widening it is additive and
 * narrowing it is breaking. Its OUTPUT must stay within what old clients understand, so
 * narrowing it is additive and widening it is breaking. On top of that, a few rules are fixed
 * whatever the direction: a removed field is breaking, an incompatible type change is breaking.
 *
 * Objects: inputs are strict (`additionalProperties: false`: an unknown key is refused), outputs
 * are published open (no `additionalProperties`: clients accept and ignore unknown keys).
 *   - added input field: required → breaking; optional → additive on a strict object (nobody
 *     could send it before), breaking on an open one unless it accepts anything;
 *   - added output field: additive on an open object, breaking on a closed one (old clients that
 *     validate reject it);
 *   - removed field: breaking on either side (an old client still sends it — a strict input now
 *     refuses it as an unrecognized key — or still reads it);
 *   - output object opened (false → open): additive: it adds no field, it makes later additions
 *     safe. Input opened: additive; input closed: breaking.
 * Anything the classifier cannot prove compatible is reported as a breaking
 * `unclassified-change`.
 */
import { canonicalJson, deepEqual, isPlainObject, showValue } from './json.js';
import type {
  CompatChange,
  CompatChangeKind,
  CompatSeverity,
  JsonSchema,
  ProcedureContract,
} from './types.js';

type SchemaObject = { readonly [keyword: string]: unknown };
type SchemaDirection = 'input' | 'output';
/** What a change does to the set of accepted values. */
type Effect = 'widened' | 'narrowed' | 'incompatible';

export interface SchemaChangeOptions {
  readonly procedure: string;
  readonly direction: SchemaDirection;
}

/** Keywords that never change which values are valid. */
const ANNOTATION_KEYWORDS = new Set([
  '$schema',
  '$id',
  '$comment',
  '$anchor',
  '$defs',
  'definitions',
  'title',
  'description',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
]);

/** Keywords `compareCore` classifies itself; any other keyword that differs is unclassified. */
const CORE_KEYWORDS = new Set([
  'type',
  'enum',
  'const',
  'default',
  'maximum',
  'exclusiveMaximum',
  'minimum',
  'exclusiveMinimum',
  'maxLength',
  'minLength',
  'maxItems',
  'minItems',
  'maxProperties',
  'minProperties',
  'multipleOf',
  'pattern',
  'format',
  'contentEncoding',
  'contentMediaType',
  'uniqueItems',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'patternProperties',
  'items',
  'prefixItems',
  'allOf',
]);

const UPPER_COUNT_KEYWORDS = ['maxLength', 'maxItems', 'maxProperties'] as const;
const LOWER_COUNT_KEYWORDS = ['minLength', 'minItems', 'minProperties'] as const;
const STRING_MARKER_KEYWORDS = [
  'pattern',
  'format',
  'contentEncoding',
  'contentMediaType',
] as const;

const ANY_SCHEMA: SchemaObject = Object.freeze({});
/** Every JSON object key is a string, so a missing `propertyNames` means this. */
const ANY_KEY_SCHEMA: SchemaObject = Object.freeze({ type: 'string' });

/** Upper bound on schema-node comparisons per classification: a guard, never reached by real contracts. */
const MAX_COMPARISONS = 200_000;
const MAX_REF_HOPS = 64;

interface Side {
  readonly root: JsonSchema;
  /** `$ref` nodes with sibling keywords, merged once so that node identity stays stable. */
  readonly merged: WeakMap<object, SchemaObject>;
}

interface Context {
  readonly procedure: string;
  readonly direction: SchemaDirection;
  readonly before: Side;
  readonly after: Side;
  /** Pairs of (before, after) nodes being compared right now: met again, they are assumed equal. */
  readonly inProgress: Map<object, Set<object>>;
  remaining: number;
  exhausted: boolean;
}

/** One alternative of a (possibly single-branch) union. */
interface Option {
  readonly schema: JsonSchema;
  /** True when `schema` is already resolved and must be compared with `compareCore` directly. */
  readonly direct: boolean;
}

interface View {
  readonly nullable: boolean;
  readonly options: readonly Option[];
  readonly union: 'anyOf' | 'oneOf' | null;
}

// ---------------------------------------------------------------------------------------------
// Public API

/** Classifies the change between two JSON Schemas of one procedure's input or output. */
export function classifySchemaChange(
  before: JsonSchema,
  after: JsonSchema,
  options: SchemaChangeOptions,
): CompatChange[] {
  const ctx: Context = {
    procedure: options.procedure,
    direction: options.direction,
    before: { root: before, merged: new WeakMap() },
    after: { root: after, merged: new WeakMap() },
    inProgress: new Map(),
    remaining: MAX_COMPARISONS,
    exhausted: false,
  };
  const out: CompatChange[] = [];
  if (!deepEqual(before, after)) compareSchema(ctx, before, after, [], out);
  if (ctx.exhausted) {
    push(
      ctx,
      out,
      [],
      'unclassified-change',
      'breaking',
      'schema too large or too deeply nested to classify',
    );
  }
  return out;
}

/** Classifies the change to one procedure; `undefined` means the procedure does not exist on that side. */
export function classifyProcedureChange(
  procedure: string,
  before: ProcedureContract | undefined,
  after: ProcedureContract | undefined,
): CompatChange[] {
  if (before === undefined && after === undefined) return [];
  if (before === undefined) {
    return [procedureChange(procedure, 'procedure-added', 'additive', 'procedure added')];
  }
  if (after === undefined) {
    return [
      procedureChange(
        procedure,
        'procedure-removed',
        'breaking',
        'procedure removed: old clients still call it',
      ),
    ];
  }
  const changes: CompatChange[] = [];
  if (before.kind !== after.kind) {
    changes.push(
      procedureChange(
        procedure,
        'procedure-kind-changed',
        'breaking',
        `procedure kind changed from ${before.kind} to ${after.kind}: old clients call it the old way`,
      ),
    );
  }
  changes.push(
    ...classifySchemaChange(before.input, after.input, { procedure, direction: 'input' }),
  );
  changes.push(
    ...classifySchemaChange(before.output, after.output, { procedure, direction: 'output' }),
  );
  return changes;
}

/** Classifies every change between two sets of procedure contracts, procedures in name order. */
export function classifyContractChanges(
  before: Readonly<Record<string, ProcedureContract>>,
  after: Readonly<Record<string, ProcedureContract>>,
): CompatChange[] {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return names.flatMap((name) =>
    classifyProcedureChange(
      name,
      Object.hasOwn(before, name) ? before[name] : undefined,
      Object.hasOwn(after, name) ? after[name] : undefined,
    ),
  );
}

function procedureChange(
  procedure: string,
  kind: CompatChangeKind,
  severity: CompatSeverity,
  message: string,
): CompatChange {
  return { procedure, direction: 'procedure', path: '/', kind, severity, message };
}

// ---------------------------------------------------------------------------------------------
// Emitting changes

function severityOf(direction: SchemaDirection, effect: Effect): CompatSeverity {
  if (effect === 'incompatible') return 'breaking';
  if (direction === 'input') return effect === 'widened' ? 'additive' : 'breaking';
  return effect === 'narrowed' ? 'additive' : 'breaking';
}

function reasonFor(direction: SchemaDirection, effect: Effect): string {
  if (effect === 'incompatible') return '';
  if (direction === 'input' && effect === 'narrowed') {
    return ' (old clients may send values the server now rejects)';
  }
  if (direction === 'output' && effect === 'widened') {
    return ' (old clients may receive values they do not expect)';
  }
  return '';
}

function formatPath(path: readonly string[]): string {
  return `/${path.join('/')}`;
}

/** A property name as a path segment, escaped as in a JSON pointer. */
function fieldSegment(name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1');
}

function push(
  ctx: Context,
  out: CompatChange[],
  path: readonly string[],
  kind: CompatChangeKind,
  severity: CompatSeverity,
  message: string,
): void {
  out.push({
    procedure: ctx.procedure,
    direction: ctx.direction,
    path: formatPath(path),
    kind,
    severity,
    message,
  });
}

function pushEffect(
  ctx: Context,
  out: CompatChange[],
  path: readonly string[],
  kind: CompatChangeKind,
  effect: Effect,
  message: string,
): void {
  push(
    ctx,
    out,
    path,
    kind,
    severityOf(ctx.direction, effect),
    message + reasonFor(ctx.direction, effect),
  );
}

function unclassified(
  ctx: Context,
  out: CompatChange[],
  path: readonly string[],
  message: string,
): void {
  push(ctx, out, path, 'unclassified-change', 'breaking', `${message}; cannot prove it compatible`);
}

// ---------------------------------------------------------------------------------------------
// Resolving `$ref`

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === 'boolean' || isPlainObject(value);
}

function resolvePointer(root: JsonSchema, ref: string): JsonSchema | undefined {
  if (!ref.startsWith('#')) return undefined;
  const fragment = ref.slice(1);
  if (fragment === '') return root;
  if (!fragment.startsWith('/')) return undefined;
  let node: unknown = root;
  for (const raw of fragment.slice(1).split('/')) {
    let token: string;
    try {
      token = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    token = token.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
      node = node[Number(token)];
    } else if (isPlainObject(node) && Object.hasOwn(node, token)) {
      node = node[token];
    } else {
      return undefined;
    }
  }
  return isSchema(node) ? node : undefined;
}

function hasValidationKeywords(node: SchemaObject, except: readonly string[] = []): boolean {
  return Object.keys(node).some((key) => !ANNOTATION_KEYWORDS.has(key) && !except.includes(key));
}

type Resolved =
  { readonly ok: true; readonly schema: JsonSchema } | { readonly ok: false; readonly ref: string };

/** Follows local `$ref`s (sibling keywords are merged over the target, as an `allOf` would apply them). */
function resolve(side: Side, schema: JsonSchema): Resolved {
  let current = schema;
  for (let hop = 0; hop <= MAX_REF_HOPS; hop++) {
    if (typeof current === 'boolean' || typeof current.$ref !== 'string') {
      return { ok: true, schema: current };
    }
    const ref = current.$ref;
    const target = resolvePointer(side.root, ref);
    if (target === undefined) return { ok: false, ref };
    if (!hasValidationKeywords(current, ['$ref'])) {
      current = target;
      continue;
    }
    const cached = side.merged.get(current);
    if (cached !== undefined) {
      current = cached;
      continue;
    }
    const { $ref: _ref, ...siblings } = current;
    const merged: JsonSchema =
      target === false ? false : { ...(target === true ? {} : target), ...siblings };
    if (merged !== false) side.merged.set(current, merged);
    current = merged;
  }
  return { ok: false, ref: 'a $ref chain that does not end' };
}

/** A `$ref` anywhere inside: such a node cannot be compared by plain equality across documents. */
function containsRef(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(containsRef);
  if (!isPlainObject(value)) return false;
  return Object.entries(value).some(([key, inner]) => key === '$ref' || containsRef(inner));
}

// ---------------------------------------------------------------------------------------------
// Types and unions

function typeList(node: SchemaObject): readonly string[] | undefined {
  const type = node.type;
  if (typeof type === 'string') return [type];
  if (Array.isArray(type) && type.every((t) => typeof t === 'string')) return type;
  return undefined;
}

function coversType(set: readonly string[] | undefined, type: string): boolean {
  return set === undefined || set.includes(type) || (type === 'integer' && set.includes('number'));
}

function isTypeSubset(x: readonly string[] | undefined, y: readonly string[] | undefined): boolean {
  if (x === undefined) return y === undefined;
  return x.every((type) => coversType(y, type));
}

function typesOverlap(x: readonly string[] | undefined, y: readonly string[] | undefined): boolean {
  if (x === undefined || y === undefined) return true;
  return x.some((type) => coversType(y, type)) || y.some((type) => coversType(x, type));
}

function describeTypes(schema: JsonSchema): string {
  if (schema === false) return 'nothing';
  if (schema === true) return 'any';
  return typeList(schema)?.join('|') ?? 'any';
}

function isNullOnly(schema: JsonSchema): boolean {
  if (typeof schema === 'boolean') return false;
  const types = typeList(schema);
  if (types !== undefined) return types.length === 1 && types[0] === 'null';
  if (Object.hasOwn(schema, 'const')) return schema.const === null;
  return Array.isArray(schema.enum) && schema.enum.length === 1 && schema.enum[0] === null;
}

/** Splits a schema into "accepts null" and its non-null alternatives. */
function viewOf(side: Side, schema: JsonSchema): View {
  if (schema === false) return { nullable: false, options: [], union: null };
  const node = schema === true ? ANY_SCHEMA : schema;
  const union = Array.isArray(node.anyOf) ? 'anyOf' : Array.isArray(node.oneOf) ? 'oneOf' : null;
  if (union !== null && !hasValidationKeywords(node, [union, 'default'])) {
    let nullable = false;
    const options: Option[] = [];
    for (const branch of node[union] as unknown[]) {
      const resolved = isSchema(branch) ? resolve(side, branch) : undefined;
      if (resolved?.ok === true && isNullOnly(resolved.schema)) {
        nullable = true;
        continue;
      }
      options.push({ schema: isSchema(branch) ? branch : false, direct: false });
    }
    return { nullable, options, union };
  }
  if (isNullOnly(node)) return { nullable: true, options: [], union: null };
  const types = typeList(node);
  if (types !== undefined && types.includes('null')) {
    const rest = types.filter((type) => type !== 'null');
    const stripped: Record<string, unknown> = { ...node, type: rest.length === 1 ? rest[0] : rest };
    if (Array.isArray(node.enum)) stripped.enum = node.enum.filter((value) => value !== null);
    return { nullable: true, options: [{ schema: stripped, direct: true }], union: null };
  }
  return { nullable: false, options: [{ schema: node, direct: true }], union: null };
}

function constValue(side: Side, schema: unknown): { readonly value: unknown } | undefined {
  if (!isSchema(schema)) return undefined;
  const resolved = resolve(side, schema);
  if (!resolved.ok || typeof resolved.schema === 'boolean') return undefined;
  const node = resolved.schema;
  if (Object.hasOwn(node, 'const')) return { value: node.const };
  if (Array.isArray(node.enum) && node.enum.length === 1) return { value: node.enum[0] };
  return undefined;
}

function resolvedObject(side: Side, schema: JsonSchema): SchemaObject | undefined {
  const resolved = resolve(side, schema);
  if (!resolved.ok) return undefined;
  return resolved.schema === true
    ? ANY_SCHEMA
    : resolved.schema === false
      ? undefined
      : resolved.schema;
}

/**
 * Whether no value can match two alternatives at once, so that `oneOf` behaves like `anyOf`:
 * their types are pairwise disjoint, or they are objects told apart by a required constant
 * property (a discriminated union).
 */
function alternativesExclusive(side: Side, options: readonly Option[]): boolean {
  if (options.length <= 1) return true;
  const nodes = options.map((option) => resolvedObject(side, option.schema));
  if (nodes.some((node) => node === undefined)) return false;
  const objects = nodes as SchemaObject[];
  const typeSets = objects.map(typeList);
  const typeDisjoint = typeSets.every((x, i) =>
    typeSets.every(
      (y, j) => i === j || (x !== undefined && y !== undefined && !typesOverlap(x, y)),
    ),
  );
  if (typeDisjoint) return true;
  const first = objects[0]!;
  const candidates = isPlainObject(first.properties) ? Object.keys(first.properties) : [];
  return candidates.some((key) => {
    const seen = new Set<string>();
    for (const node of objects) {
      const required = Array.isArray(node.required) ? node.required : [];
      const properties = isPlainObject(node.properties) ? node.properties : {};
      if (!required.includes(key) || !Object.hasOwn(properties, key)) return false;
      const discriminator = constValue(side, properties[key]);
      if (discriminator === undefined) return false;
      const text = canonicalJson(discriminator.value);
      if (seen.has(text)) return false;
      seen.add(text);
    }
    return true;
  });
}

/** A key that pairs an old alternative with its new version: its types and constant properties. */
function alternativeKey(side: Side, option: Option): string {
  const node = resolvedObject(side, option.schema);
  if (node === undefined) return 'never';
  const types = [...(typeList(node) ?? ['any'])].sort().join('|');
  const properties = isPlainObject(node.properties) ? node.properties : {};
  const constants = Object.keys(properties)
    .sort()
    .flatMap((key) => {
      const value = constValue(side, properties[key]);
      return value === undefined ? [] : [`${key}=${canonicalJson(value.value)}`];
    });
  return [types, ...constants].join(';');
}

// ---------------------------------------------------------------------------------------------
// Comparison

function spend(ctx: Context): boolean {
  if (ctx.remaining <= 0) {
    ctx.exhausted = true;
    return false;
  }
  ctx.remaining -= 1;
  return true;
}

function compareSchema(
  ctx: Context,
  before: unknown,
  after: unknown,
  path: readonly string[],
  out: CompatChange[],
): void {
  if (!spend(ctx)) return;
  if (!isSchema(before) || !isSchema(after)) {
    if (!deepEqual(before, after))
      unclassified(ctx, out, path, 'a value that is not a JSON Schema changed');
    return;
  }
  const rb = resolve(ctx.before, before);
  const ra = resolve(ctx.after, after);
  if (!rb.ok || !ra.ok) {
    const same = !rb.ok && !ra.ok && rb.ref === ra.ref && deepEqual(before, after);
    if (!same) {
      const ref = !rb.ok ? rb.ref : !ra.ok ? ra.ref : '';
      unclassified(ctx, out, path, `unresolvable $ref ${showValue(ref)}`);
    }
    return;
  }
  const b = rb.schema;
  const a = ra.schema;
  if (typeof b === 'boolean' || typeof a === 'boolean') {
    if (b !== a) compareViews(ctx, b, a, path, out);
    return;
  }
  if (deepEqual(b, a) && !containsRef(b)) return;
  let partners = ctx.inProgress.get(b);
  if (partners?.has(a)) return; // recursion: assume equal, the first visit reports any difference
  if (partners === undefined) {
    partners = new Set();
    ctx.inProgress.set(b, partners);
  }
  partners.add(a);
  try {
    compareViews(ctx, b, a, path, out);
  } finally {
    partners.delete(a);
  }
}

function compareViews(
  ctx: Context,
  before: JsonSchema,
  after: JsonSchema,
  path: readonly string[],
  out: CompatChange[],
): void {
  const bv = viewOf(ctx.before, before);
  const av = viewOf(ctx.after, after);

  if (bv.options.length === 0 || av.options.length === 0) {
    const from =
      bv.options.length === 0 ? (bv.nullable ? 'null' : 'nothing') : describeTypes(before);
    const to = av.options.length === 0 ? (av.nullable ? 'null' : 'nothing') : describeTypes(after);
    if (bv.options.length === 0 && av.options.length === 0) {
      if (bv.nullable !== av.nullable) {
        if (av.nullable)
          pushEffect(ctx, out, path, 'nullable-added', 'widened', 'null now accepted');
        else pushEffect(ctx, out, path, 'nullable-removed', 'narrowed', 'null no longer accepted');
      }
    } else if (bv.options.length === 0) {
      if (!bv.nullable || av.nullable) {
        pushEffect(ctx, out, path, 'type-widened', 'widened', `type widened from ${from} to ${to}`);
      } else {
        push(ctx, out, path, 'type-changed', 'breaking', `type changed from ${from} to ${to}`);
      }
    } else if (!av.nullable || bv.nullable) {
      pushEffect(
        ctx,
        out,
        path,
        'type-narrowed',
        'narrowed',
        `type narrowed from ${from} to ${to}`,
      );
    } else {
      push(ctx, out, path, 'type-changed', 'breaking', `type changed from ${from} to ${to}`);
    }
    return;
  }

  if (bv.nullable !== av.nullable) {
    if (av.nullable) pushEffect(ctx, out, path, 'nullable-added', 'widened', 'null now accepted');
    else pushEffect(ctx, out, path, 'nullable-removed', 'narrowed', 'null no longer accepted');
  }

  if (bv.options.length === 1 && av.options.length === 1) {
    compareOption(ctx, bv.options[0]!, av.options[0]!, path, out);
    return;
  }
  compareAlternatives(ctx, bv, av, path, out);
}

function compareOption(
  ctx: Context,
  before: Option,
  after: Option,
  path: readonly string[],
  out: CompatChange[],
): void {
  if (
    before.direct &&
    after.direct &&
    typeof before.schema === 'object' &&
    typeof after.schema === 'object'
  ) {
    compareCore(ctx, before.schema, after.schema, path, out);
  } else {
    compareSchema(ctx, before.schema, after.schema, path, out);
  }
}

function compareAlternatives(
  ctx: Context,
  bv: View,
  av: View,
  path: readonly string[],
  out: CompatChange[],
): void {
  const equivalent = bv.options.map((x) =>
    av.options.map((y) => {
      const probe: CompatChange[] = [];
      compareOption(ctx, x, y, path, probe);
      return probe.length === 0;
    }),
  );
  const unmatchedBefore = bv.options.filter((_, i) => !equivalent[i]!.some(Boolean));
  const unmatchedAfter = av.options.filter((_, j) => !equivalent.some((row) => row[j]));

  const exclusive =
    (bv.union !== 'oneOf' || alternativesExclusive(ctx.before, bv.options)) &&
    (av.union !== 'oneOf' || alternativesExclusive(ctx.after, av.options));
  if (!exclusive) {
    // Overlapping `oneOf` branches: a new or changed branch can make a value match twice.
    if (unmatchedBefore.length > 0 || unmatchedAfter.length > 0 || bv.union !== av.union) {
      unclassified(ctx, out, path, 'alternatives of a oneOf whose branches may overlap changed');
    }
    return;
  }
  if (unmatchedBefore.length === 0 && unmatchedAfter.length === 0) return;

  const pairs: Array<readonly [Option, Option]> = [];
  let added: Option[] = [];
  let removed: Option[] = [];
  if (unmatchedBefore.length === 1 && unmatchedAfter.length === 1) {
    pairs.push([unmatchedBefore[0]!, unmatchedAfter[0]!]);
  } else {
    const group = (side: Side, options: readonly Option[]): Map<string, Option[]> => {
      const byKey = new Map<string, Option[]>();
      for (const option of options) {
        const key = alternativeKey(side, option);
        byKey.set(key, [...(byKey.get(key) ?? []), option]);
      }
      return byKey;
    };
    const beforeByKey = group(ctx.before, unmatchedBefore);
    const afterByKey = group(ctx.after, unmatchedAfter);
    let ambiguous = false;
    for (const [key, olds] of beforeByKey) {
      const news = afterByKey.get(key);
      if (news === undefined) removed = [...removed, ...olds];
      else if (olds.length === 1 && news.length === 1) pairs.push([olds[0]!, news[0]!]);
      else ambiguous = true;
    }
    for (const [key, news] of afterByKey) {
      if (!beforeByKey.has(key)) added = [...added, ...news];
    }
    if (ambiguous) {
      unclassified(ctx, out, path, 'alternatives changed and cannot be paired old to new');
      return;
    }
  }
  for (const [x, y] of pairs) compareOption(ctx, x, y, path, out);
  if (added.length > 0) {
    const literals = literalValues(ctx.after, added);
    if (literals !== undefined) {
      pushEffect(
        ctx,
        out,
        path,
        'enum-widened',
        'widened',
        `value(s) added: ${listValues(literals)}`,
      );
    } else {
      const what = added.map((option) => describeTypes(option.schema)).join(', ');
      pushEffect(
        ctx,
        out,
        path,
        'union-widened',
        'widened',
        `${added.length} alternative(s) added (${what})`,
      );
    }
  }
  if (removed.length > 0) {
    const literals = literalValues(ctx.before, removed);
    if (literals !== undefined) {
      pushEffect(
        ctx,
        out,
        path,
        'enum-narrowed',
        'narrowed',
        `value(s) removed: ${listValues(literals)}`,
      );
    } else {
      const what = removed.map((option) => describeTypes(option.schema)).join(', ');
      pushEffect(
        ctx,
        out,
        path,
        'union-narrowed',
        'narrowed',
        `${removed.length} alternative(s) removed (${what})`,
      );
    }
  }
}

/** The constants of alternatives that are each a single literal (a union of literals is an enum). */
function literalValues(side: Side, options: readonly Option[]): unknown[] | undefined {
  const values: unknown[] = [];
  for (const option of options) {
    const literal = constValue(side, option.schema);
    if (literal === undefined) return undefined;
    values.push(literal.value);
  }
  return values;
}

/** Compares two resolved, non-union schema objects keyword by keyword. */
function compareCore(
  ctx: Context,
  b: SchemaObject,
  a: SchemaObject,
  path: readonly string[],
  out: CompatChange[],
): void {
  if (!compareTypes(ctx, b, a, path, out)) return;
  compareEnums(ctx, b, a, path, out);
  compareBounds(ctx, b, a, path, out);
  compareMarkers(ctx, b, a, path, out);
  compareDefaults(ctx, b, a, path, out);
  compareObjects(ctx, b, a, path, out);
  compareArrays(ctx, b, a, path, out);
  compareAllOf(ctx, b, a, path, out);
  for (const key of new Set([...Object.keys(b), ...Object.keys(a)])) {
    if (ANNOTATION_KEYWORDS.has(key) || CORE_KEYWORDS.has(key)) continue;
    if (!deepEqual(b[key], a[key])) unclassified(ctx, out, path, `keyword ${key} changed`);
  }
}

/** Returns false when the types are incompatible (nothing more is worth comparing). */
function compareTypes(
  ctx: Context,
  b: SchemaObject,
  a: SchemaObject,
  path: readonly string[],
  out: CompatChange[],
): boolean {
  const tb = typeList(b);
  const ta = typeList(a);
  const widened = isTypeSubset(tb, ta);
  const narrowed = isTypeSubset(ta, tb);
  if (widened && narrowed) return true;
  const from = tb?.join('|') ?? 'any';
  const to = ta?.join('|') ?? 'any';
  if (widened) {
    pushEffect(ctx, out, path, 'type-widened', 'widened', `type widened from ${from} to ${to}`);
    return true;
  }
  if (narrowed) {
    pushEffect(ctx, out, path, 'type-narrowed', 'narrowed', `type narrowed from ${from} to ${to}`);
    return true;
  }
  push(ctx, out, path, 'type-changed', 'breaking', `type changed from ${from} to ${to}`);
  return false;
}

function enumValues(node: SchemaObject): readonly unknown[] | undefined {
  if (Object.hasOwn(node, 'const')) return [node.const];
  return Array.isArray(node.enum) ? node.enum : undefined;
}

function listValues(values: readonly unknown[]): string {
  return values.map((value) => showValue(value)).join(', ');
}

function compareEnums(
  ctx: Context,
  b: SchemaObject,
  a: SchemaObject,
  path: readonly string[],
  out: CompatChange[],
): void {
  const vb = enumValues(b);
  const va = enumValues(a);
  if (vb === undefined && va === undefined) return;
  if (vb === undefined) {
    pushEffect(
      ctx,
      out,
      path,
      'enum-narrowed',
      'narrowed',
      `values restricted to ${listValues(va!)}`,
    );
    return;
  }
  if (va === undefined) {
    pushEffect(
      ctx,
      out,
      path,
      'enum-widened',
      'widened',
      `value restriction (${listValues(vb)}) removed`,
    );
    return;
  }
  const before = new Set(vb.map(canonicalJson));
  const after = new Set(va.map(canonicalJson));
  const added = va.filter((value) => !before.has(canonicalJson(value)));
  const removed = vb.filter((value) => !after.has(canonicalJson(value)));
  if (added.length > 0) {
    pushEffect(ctx, out, path, 'enum-widened', 'widened', `value(s) added: ${listValues(added)}`);
  }
  if (removed.length > 0) {
    pushEffect(
      ctx,
      out,
      path,
      'enum-narrowed',
      'narrowed',
      `value(s) removed: ${listValues(removed)}`,
    );
  }
}

function numberKeyword(
  ctx: Context,
  b: SchemaObject,
  a: SchemaObject,
  keyword: string,
  path: readonly string[],
  out: CompatChange[],
): readonly [number | undefined, number | undefined] {
  const read = (node: SchemaObject): number | undefined | null => {
    if (!Object.hasOwn(node, keyword)) return undefined;
    const value = node[keyword];
    return typeof value === 'number' && !Number.isNaN(value) ? value : null;
  };
  const vb = read(b);
  const va = read(a);
  if (vb === null || va === null) {
    if (!deepEqual(b[keyword], a[keyword]))
      unclassified(ctx, out, path, `keyword ${keyword} changed`);
    return [undefined, undefined];
  }
  return [vb, va];
}

interface NumericBound {
  readonly value: number;
  readonly exclusive: boolean;
}

function tighterBound(
  x: NumericBound | undefined,
  y: NumericBound | undefined,
  upper: boolean,
): NumericBound | undefined {
  if (x === undefined) return y;
  if (y === undefined) return x;
  if (x.value !== y.value) return x.value < y.value === upper ? x : y;
  return x.exclusive ? x : y;
}

function showBound(bound: NumericBound | undefined, upper: boolean): string {
  if (bound === undefined) return 'none';
  return `${upper ? '<' : '>'}${bound.exclusive ? '' : '='} ${bound.value}`;
}

function compareBounds(
  ctx: Context,
  b: SchemaObject,
  a: SchemaObject,
  path: readonly string[],
  out: CompatChange[],
): void {
  for (const keyword of UPPER_COUNT_KEYWORDS) {
    const [vb, va] = numberKeyword(ctx, b, a, keyword, path, out);
    const x = vb ?? Infinity;
    const y = va ?? Infinity;
    if (y < x) {
      const message =
        vb === undefined ? `${keyword} ${y} added` : `${keyword} lowered from ${x} to ${y}`;
      pushEffect(ctx, out, path, 'constraint-tightened', 'narrowed', message);
    }
    if (y > x) {
      const message =
        va === undefined ? `${keyword} ${x} removed` : `${keyword} raised from ${x} to ${y}`;
      pushEffect(ctx, out, path, 'constraint-loosened', 'widened', message);
    }
  }
  for (const keyword of LOWER_COUNT_KEYWORDS) {
    const [vb, va] = numberKeyword(ctx, b, a, keyword, path, out);
    const x = vb ?? 0;
    const y = va ?? 0;
    if (y > x)
      pushEffect(
        ctx,
        out,
        path,
        'constraint-tightened',
        'narrowed',
        `${keyword} raised from ${x} to ${y}`,
      );
    if (y < x)
      pushEffect(
        ctx,
        out,
        path,
        'constraint-loosened',
        'widened',
        `${keyword} lowered from ${x} to ${y}`,
      );
  }
  for (const upper of [true, false]) {
    const inclusiveKeyword = upper ? 'maximum' : 'minimum';
    const exclusiveKeyword = upper ? 'exclusiveMaximum' : 'exclusiveMinimum';
    const [ib, ia] = numberKeyword(ctx, b, a, inclusiveKeyword, path, out);
    const [eb, ea] = numberKeyword(ctx, b, a, exclusiveKeyword, path, out);
    const bound = (
      inclusive: number | undefined,
      exclusive: number | undefined,
    ): NumericBound | undefined =>
      tighterBound(
        inclusive === undefined ? undefined : { value: inclusive, exclusive: false },
        exclusive === undefined ? undefined : { value: exclusive, exclusive: true },
        upper,
      );
    const x = bound(ib, eb);
    const y = bound(ia, ea);
    if (x?.value === y?.value && x?.exclusive === y?.exclusive) continue;
    const tighter = tighterBound(x, y, upper) === y;
    const name = upper ? 'maximum' : 'minimum';
    const message = `${name} changed from ${showBound(x, upper)} to ${showBound(y, upper)}`;
    if (tighter) pushEffect(ctx, out, path, 'constraint-tightened', 'narrowed', message);
    else pushEffect(ctx, out, path, 'constraint-loosened', 'widened', message);
  }
}

function compareMarkers(
  ctx: Context,
  b: SchemaObject,
  a: SchemaObject,
  path: readonly string[],
  out: CompatChange[],
): void {
  const [mb, ma] = numberKeyword(ctx, b, a, 'multipleOf', path, out);
  if (mb !== ma) {
    if (mb === undefined) {
      pushEffect(ctx, out, path, 'constraint-tightened', 'narrowed', `multipleOf ${ma} added`);
    } else if (ma === undefined) {
      pushEffect(ctx, out, path, 'constraint-loosened', 'widened', `multipleOf ${mb} removed`);
    } else if (Number.isInteger(ma / mb)) {
      pushEffect(
        ctx,
        out,
        path,
        'constraint-tightened',
        'narrowed',
        `multipleOf changed from ${mb} to ${ma}`,
      );
    } else if (Number.isInteger(mb / ma)) {
      pushEffect(
        ctx,
        out,
        path,
        'constraint-loosened',
        'widened',
        `multipleOf changed from ${mb} to ${ma}`,
      );
    } else {
      push(
        ctx,
        out,
        path,
        'constraint-changed',
        'breaking',
        `multipleOf changed from ${mb} to ${ma}`,
      );
    }
  }
  for (const keyword of STRING_MARKER_KEYWORDS) {
    const vb = b[keyword];
    const va = a[keyword];
    if (deepEqual(vb, va)) continue;
    if (keyword === 'pattern' && samePattern(vb, va)) continue;
    if (vb === undefined) {
      pushEffect(
        ctx,
        out,
        path,
        'constraint-tightened',
        'narrowed',
        `${keyword} ${showValue(va)} added`,
      );
    } else if (va === undefined) {
      pushEffect(
        ctx,
        out,
        path,
        'constraint-loosened',
        'widened',
        `${keyword} ${showValue(vb)} removed`,
      );
    } else {
      push(
        ctx,
        out,
        path,
        'constraint-changed',
        'breaking',
        `${keyword} changed from ${showValue(vb)} to ${showValue(va)}`,
      );
    }
  }
  const ub = b.uniqueItems === true;
  const ua = a.uniqueItems === true;
  if (ub !== ua) {
    if (ua)
      pushEffect(
        ctx,
        out,
        path,
        'constraint-tightened',
        'narrowed',
        'array items must now be unique',
      );
    else
      pushEffect(
        ctx,
        out,
        path,
        'constraint-loosened',
        'widened',
        'array items no longer need to be unique',
      );
  }
}

/**
 * Whether two regex sources are the same pattern up to spelling that cannot change what they
 * match: `\/` and `/` are the same character in every ECMAScript regex mode.
 */
function samePattern(x: unknown, y: unknown): boolean {
  if (typeof x !== 'string' || typeof y !== 'string') return false;
  const normalise = (source: string): string => {
    let out = '';
    for (let i = 0; i < source.length; i++) {
      const char = source[i]!;
      if (char === '\\' && i + 1 < source.length) {
        const next = source[i + 1]!;
        out += next === '/' ? '/' : char + next;
        i += 1;
      } else {
        out += char;
      }
    }
    return out;
  };
  return normalise(x) === normalise(y);
}

function compareDefaults(
  ctx: Context,
  b: SchemaObject,
  a: SchemaObject,
  path: readonly string[],
  out: CompatChange[],
): void {
  // Only an input default matters: it is what the server assumes when an old client omits the field.
  if (ctx.direction !== 'input') return;
  if (!Object.hasOwn(b, 'default') || !Object.hasOwn(a, 'default')) return;
  if (deepEqual(b.default, a.default)) return;
  push(
    ctx,
    out,
    path,
    'default-changed',
    'breaking',
    `default changed from ${showValue(b.default)} to ${showValue(a.default)} (old clients that omit the field get different behaviour)`,
  );
}

function stringList(value: unknown): readonly string[] {
  return Array.isArray(value)
    ? value.filter((item): item is string => typeof item === 'string')
    : [];
}

function compareObjects(
  ctx: Context,
  b: SchemaObject,
  a: SchemaObject,
  path: readonly string[],
  out: CompatChange[],
): void {
  const pb = isPlainObject(b.properties) ? b.properties : {};
  const pa = isPlainObject(a.properties) ? a.properties : {};
  const rb = new Set(stringList(b.required));
  const ra = new Set(stringList(a.required));
  const keys = new Set([...Object.keys(pb), ...Object.keys(pa), ...rb, ...ra]);
  for (const key of keys) {
    const fieldPath = [...path, fieldSegment(key)];
    const inBefore = Object.hasOwn(pb, key);
    const inAfter = Object.hasOwn(pa, key);
    if (inBefore && !inAfter) {
      push(
        ctx,
        out,
        fieldPath,
        'field-removed',
        'breaking',
        ctx.direction === 'output'
          ? 'field removed (old clients still read it)'
          : a.additionalProperties === false
            ? 'field removed (old clients still send it: unrecognized key)'
            : 'field removed (old clients still send it; it is now ignored)',
      );
      continue;
    }
    if (!inBefore && inAfter) {
      compareAddedField(ctx, b, pa[key], ra.has(key), fieldPath, out);
      continue;
    }
    if (inBefore && inAfter) compareSchema(ctx, pb[key], pa[key], fieldPath, out);
    if (rb.has(key) && !ra.has(key)) {
      pushEffect(
        ctx,
        out,
        fieldPath,
        'field-became-optional',
        'widened',
        'required field became optional',
      );
    } else if (!rb.has(key) && ra.has(key)) {
      pushEffect(
        ctx,
        out,
        fieldPath,
        'field-became-required',
        'narrowed',
        'optional field became required',
      );
    }
  }

  if (Object.hasOwn(b, 'additionalProperties') || Object.hasOwn(a, 'additionalProperties')) {
    const apb = b.additionalProperties ?? true;
    const apa = a.additionalProperties ?? true;
    if (apb === false && apa !== false && ctx.direction === 'output') {
      // Opening adds no field by itself; it lets fields be added later without breaking anyone.
      push(
        ctx,
        out,
        path,
        'constraint-loosened',
        'additive',
        'additionalProperties opened: clients must accept fields added later',
      );
    } else if (apb === false && apa !== false) {
      pushEffect(
        ctx,
        out,
        path,
        'constraint-loosened',
        'widened',
        'additionalProperties opened: unknown keys are now accepted',
      );
    } else if (apb !== false && apa === false) {
      pushEffect(
        ctx,
        out,
        path,
        'constraint-tightened',
        'narrowed',
        'additionalProperties closed: unknown keys are now rejected',
      );
    } else if (apb !== false && apa !== false) {
      compareSchema(ctx, apb, apa, [...path, '*'], out);
    }
  }

  if (Object.hasOwn(b, 'propertyNames') || Object.hasOwn(a, 'propertyNames')) {
    compareSchema(
      ctx,
      b.propertyNames ?? ANY_KEY_SCHEMA,
      a.propertyNames ?? ANY_KEY_SCHEMA,
      [...path, '{key}'],
      out,
    );
  }

  if (Object.hasOwn(b, 'patternProperties') || Object.hasOwn(a, 'patternProperties')) {
    const ppb = isPlainObject(b.patternProperties) ? b.patternProperties : {};
    const ppa = isPlainObject(a.patternProperties) ? a.patternProperties : {};
    const patterns = Object.keys(ppb);
    if (
      patterns.length !== Object.keys(ppa).length ||
      !patterns.every((p) => Object.hasOwn(ppa, p))
    ) {
      unclassified(ctx, out, path, 'patternProperties patterns changed');
    } else {
      for (const pattern of patterns) {
        compareSchema(
          ctx,
          ppb[pattern],
          ppa[pattern],
          [...path, `{${fieldSegment(pattern)}}`],
          out,
        );
      }
    }
  }
}

/** True for a schema that accepts every value (`true`, `{}`, or only annotations). */
function acceptsAnything(schema: unknown): boolean {
  return schema === true || (isPlainObject(schema) && !hasValidationKeywords(schema));
}

/**
 * A property that `before` did not declare. What old parties did with that key is decided by
 * `before`'s `additionalProperties`: rejected (closed), accepted whatever it held (open), or
 * accepted when it matched a schema.
 *   output: clients validating a closed object reject the new field (breaking); an open one
 *           takes it (additive); a schema-bound one takes it if the field stays within it.
 *   input:  a required field is breaking (old clients do not send it). An optional one is
 *           additive on a closed object (no old client could send it); on an open one old
 *           clients may already send that key with anything, so narrowing it is breaking.
 */
function compareAddedField(
  ctx: Context,
  before: SchemaObject,
  added: unknown,
  required: boolean,
  fieldPath: readonly string[],
  out: CompatChange[],
): void {
  const extra = before.additionalProperties ?? true;
  if (ctx.direction === 'input' && required) {
    push(
      ctx,
      out,
      fieldPath,
      'required-field-added',
      'breaking',
      'required field added (old clients do not send it)',
    );
    return;
  }
  const label = ctx.direction === 'output' ? 'field added' : 'optional field added';
  if (extra === false) {
    if (ctx.direction === 'output') {
      push(
        ctx,
        out,
        fieldPath,
        'field-added',
        'breaking',
        'field added to an object that old clients validate as closed (additionalProperties: false)',
      );
    } else {
      push(ctx, out, fieldPath, 'field-added', 'additive', label);
    }
    return;
  }
  if (ctx.direction === 'output' && acceptsAnything(extra)) {
    push(ctx, out, fieldPath, 'field-added', 'additive', label);
    return;
  }
  // Compare what the key could hold before (the additionalProperties schema) with the field.
  const probe: CompatChange[] = [];
  compareSchema(ctx, extra, added, fieldPath, probe);
  if (probe.some((change) => change.severity === 'breaking')) {
    out.push(...probe);
  } else {
    push(ctx, out, fieldPath, 'field-added', 'additive', label);
  }
}

function compareArrays(
  ctx: Context,
  b: SchemaObject,
  a: SchemaObject,
  path: readonly string[],
  out: CompatChange[],
): void {
  if (Object.hasOwn(b, 'prefixItems') || Object.hasOwn(a, 'prefixItems')) {
    const tb = Array.isArray(b.prefixItems) ? b.prefixItems : [];
    const ta = Array.isArray(a.prefixItems) ? a.prefixItems : [];
    if (tb.length !== ta.length) {
      unclassified(ctx, out, path, `tuple length changed from ${tb.length} to ${ta.length}`);
    } else {
      tb.forEach((item, index) =>
        compareSchema(ctx, item, ta[index], [...path, `[${index}]`], out),
      );
    }
  }
  if (Object.hasOwn(b, 'items') || Object.hasOwn(a, 'items')) {
    const ib = b.items ?? true;
    const ia = a.items ?? true;
    if (ib === false && ia !== false) {
      pushEffect(
        ctx,
        out,
        path,
        'constraint-loosened',
        'widened',
        'further array items are now accepted',
      );
    } else if (ib !== false && ia === false) {
      pushEffect(
        ctx,
        out,
        path,
        'constraint-tightened',
        'narrowed',
        'further array items are now rejected',
      );
    } else if (ib !== false && ia !== false) {
      compareSchema(ctx, ib, ia, [...path, '[]'], out);
    }
  }
}

function compareAllOf(
  ctx: Context,
  b: SchemaObject,
  a: SchemaObject,
  path: readonly string[],
  out: CompatChange[],
): void {
  if (!Object.hasOwn(b, 'allOf') && !Object.hasOwn(a, 'allOf')) return;
  const lb = Array.isArray(b.allOf) ? b.allOf : [];
  const la = Array.isArray(a.allOf) ? a.allOf : [];
  if (lb.length !== la.length) {
    unclassified(ctx, out, path, 'allOf gained or lost a member');
    return;
  }
  lb.forEach((item, index) => compareSchema(ctx, item, la[index], path, out));
}
