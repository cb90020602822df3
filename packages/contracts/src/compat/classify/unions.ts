/**
 * Comparing two schema nodes: each is resolved, split into "accepts null" and its non-null
 * alternatives, and the alternatives of the old and new node are paired (a single alternative on
 * each side goes straight to the keyword comparison). Nested schemas recurse through
 * `compareSchema`, which also stops at a pair already being compared (recursive schemas).
 */
import { canonicalJson, deepEqual, isPlainObject, showValue } from '../json.js';
import type { CompatChange, JsonSchema } from '../types.js';
import {
  push,
  pushEffect,
  spend,
  unclassified,
  type Context,
  type SchemaObject,
  type Side,
} from './context.js';
import { compareCore, listValues } from './keywords.js';
import { containsRef, hasValidationKeywords, isSchema, resolve } from './refs.js';

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

const ANY_SCHEMA: SchemaObject = Object.freeze({});

export function typeList(node: SchemaObject): readonly string[] | undefined {
  const type = node.type;
  if (typeof type === 'string') return [type];
  if (Array.isArray(type) && type.every((t) => typeof t === 'string')) return type;
  return undefined;
}

function coversType(set: readonly string[] | undefined, type: string): boolean {
  return set === undefined || set.includes(type) || (type === 'integer' && set.includes('number'));
}

export function isTypeSubset(
  x: readonly string[] | undefined,
  y: readonly string[] | undefined,
): boolean {
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
export function compareSchema(
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
