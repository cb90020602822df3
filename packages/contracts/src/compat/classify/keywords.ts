/**
 * Comparing two resolved, non-union schema objects keyword by keyword: type, enum/const, numeric
 * and count bounds, string markers, input defaults; object and array structure is compared in
 * `structure.ts`. A validation keyword this file does not know is reported unclassified.
 */
import { canonicalJson, deepEqual, showValue } from '../json.js';
import type { CompatChange } from '../types.js';
import {
  ANNOTATION_KEYWORDS,
  push,
  pushEffect,
  unclassified,
  type Context,
  type SchemaObject,
} from './context.js';
import { compareAllOf, compareArrays, compareObjects } from './structure.js';
import { isTypeSubset, typeList } from './unions.js';

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

/** Compares two resolved, non-union schema objects keyword by keyword. */
export function compareCore(
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

export function listValues(values: readonly unknown[]): string {
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
