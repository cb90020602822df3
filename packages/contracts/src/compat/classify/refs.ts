/** Resolving local `$ref`s of one side's schema document. */
import { isPlainObject } from '../json.js';
import type { JsonSchema } from '../types.js';
import { ANNOTATION_KEYWORDS, type SchemaObject, type Side } from './context.js';

const MAX_REF_HOPS = 64;

export function isSchema(value: unknown): value is JsonSchema {
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

export function hasValidationKeywords(node: SchemaObject, except: readonly string[] = []): boolean {
  return Object.keys(node).some((key) => !ANNOTATION_KEYWORDS.has(key) && !except.includes(key));
}

type Resolved =
  { readonly ok: true; readonly schema: JsonSchema } | { readonly ok: false; readonly ref: string };

/** Follows local `$ref`s (sibling keywords are merged over the target, as an `allOf` would apply them). */
export function resolve(side: Side, schema: JsonSchema): Resolved {
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
export function containsRef(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(containsRef);
  if (!isPlainObject(value)) return false;
  return Object.entries(value).some(([key, inner]) => key === '$ref' || containsRef(inner));
}
