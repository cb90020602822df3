/** Small helpers over plain JSON values: structural equality, canonical text, stable output. */
import type { JsonValue } from './types.js';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Structural equality of JSON-like values; object key order is irrelevant. */
export function deepEqual(x: unknown, y: unknown): boolean {
  if (x === y) return true;
  if (typeof x !== typeof y || x === null || y === null || typeof x !== 'object') return false;
  if (Array.isArray(x) || Array.isArray(y)) {
    if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false;
    return x.every((item, index) => deepEqual(item, y[index]));
  }
  const xo = x as Record<string, unknown>;
  const yo = y as Record<string, unknown>;
  const xKeys = Object.keys(xo);
  if (xKeys.length !== Object.keys(yo).length) return false;
  return xKeys.every((key) => Object.hasOwn(yo, key) && deepEqual(xo[key], yo[key]));
}

/** Converts any JSON-serialisable value to a plain JSON value (drops `undefined`, functions, ...). */
export function toJsonValue(value: unknown): JsonValue {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('value is not JSON-serialisable');
  return JSON.parse(text) as JsonValue;
}

function sortKeysDeep(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value === null || typeof value !== 'object') return value;
  const sorted: { [key: string]: JsonValue } = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeysDeep(value[key]!);
  return sorted;
}

/** Canonical one-line text of a JSON value (sorted keys): equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeysDeep(toJsonValue(value)));
}

/** Pretty-printed JSON with sorted keys and a trailing newline: the snapshot file format. */
export function stableJson(value: unknown): string {
  return `${JSON.stringify(sortKeysDeep(toJsonValue(value)), null, 2)}\n`;
}

/** A short rendering of a value for messages. */
export function showValue(value: unknown, max = 60): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
