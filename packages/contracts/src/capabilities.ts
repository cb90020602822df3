/**
 * Capabilities: a record keyed by capability name, each value a small descriptor.
 * Limits: ≤ 256 keys and ≤ 64 KiB serialised as JSON, so one declaration never bloats a row.
 */
import { z } from 'zod';
import { utf8ByteLength } from './utf8.js';

export const CAPABILITY_NAME_PATTERN = /^[a-z][a-z0-9._-]{0,127}$/;
export const CAPABILITIES_MAX_KEYS = 256;
export const CAPABILITIES_MAX_BYTES = 64 * 1024;

export const CapabilityName = z.string().max(128).regex(CAPABILITY_NAME_PATTERN);
export type CapabilityName = z.infer<typeof CapabilityName>;

export const CapabilityAuthLevel = z.enum(['free', 'leased', 'gated']);
export type CapabilityAuthLevel = z.infer<typeof CapabilityAuthLevel>;

/** JSON Schema of a capability's invocation input: any JSON object (validated when commands land). */
const JsonObject = z.record(z.string().max(256), z.json());

/**
 * A capability declaration. Known fields are typed; extra keys are allowed (anything more a
 * node wants to say about it) and must be JSON. An empty object is a valid declaration.
 */
export const CapabilityDescriptor = z.looseObject({
  description: z.string().max(1024).optional(),
  version: z.string().max(64).optional(),
  inputSchema: JsonObject.optional(),
  commands: z.array(z.string().min(1).max(128)).max(128).optional(),
  authLevel: CapabilityAuthLevel.optional(),
});
export type CapabilityDescriptor = z.infer<typeof CapabilityDescriptor>;

/**
 * True when JSON represents `value` exactly: null, booleans, strings, finite numbers, and arrays
 * and plain objects of those (an `undefined` property counts as absent). Iterative, so deep nesting cannot overflow the stack.
 */
function isJsonValue(value: unknown): boolean {
  const pending: unknown[] = [value];
  const seen = new Set<object>();
  while (pending.length > 0) {
    const item = pending.pop();
    if (item === null || typeof item === 'string' || typeof item === 'boolean') continue;
    if (typeof item === 'number') {
      if (!Number.isFinite(item)) return false;
      continue;
    }
    if (typeof item !== 'object') return false;
    if (seen.has(item)) continue; // a cycle is reported by the serialisation below
    seen.add(item);
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) pending.push(item[i]);
      continue;
    }
    const proto: unknown = Object.getPrototypeOf(item);
    if (proto !== Object.prototype && proto !== null) return false;
    // An `undefined` property is left out of the JSON, exactly like an absent one.
    for (const inner of Object.values(item)) if (inner !== undefined) pending.push(inner);
  }
  return true;
}

export const Capabilities = z
  .record(CapabilityName, CapabilityDescriptor)
  .superRefine((value, ctx) => {
    const keys = Object.keys(value).length;
    if (keys > CAPABILITIES_MAX_KEYS) {
      ctx.addIssue({
        code: 'custom',
        message: `at most ${CAPABILITIES_MAX_KEYS} capabilities (got ${keys})`,
      });
      return;
    }
    if (!isJsonValue(value)) {
      ctx.addIssue({
        code: 'custom',
        message: 'capability descriptors may contain only JSON values',
      });
      return;
    }
    let bytes: number;
    try {
      bytes = utf8ByteLength(JSON.stringify(value));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'capabilities must be JSON-serialisable' });
      return;
    }
    if (bytes > CAPABILITIES_MAX_BYTES) {
      ctx.addIssue({
        code: 'custom',
        message: `capabilities serialise to ${bytes} bytes; the limit is ${CAPABILITIES_MAX_BYTES}`,
      });
    }
  });
export type Capabilities = z.infer<typeof Capabilities>;
