/**
 * Comparing the structure of two schema objects: properties (added, removed, now required or
 * optional), `additionalProperties`, `propertyNames`, `patternProperties`, tuple and array items,
 * and `allOf` members. Each nested schema is compared again through `compareSchema`.
 */
import { isPlainObject } from '../json.js';
import type { CompatChange } from '../types.js';
import {
  fieldSegment,
  push,
  pushEffect,
  unclassified,
  type Context,
  type SchemaObject,
} from './context.js';
import { hasValidationKeywords } from './refs.js';
import { compareSchema } from './unions.js';

/** Every JSON object key is a string, so a missing `propertyNames` means this. */
const ANY_KEY_SCHEMA: SchemaObject = Object.freeze({ type: 'string' });

function stringList(value: unknown): readonly string[] {
  return Array.isArray(value)
    ? value.filter((item): item is string => typeof item === 'string')
    : [];
}

export function compareObjects(
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

export function compareArrays(
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

export function compareAllOf(
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
