/**
 * What an invocation must satisfy before it is stored: the capability's `commands` allow-list,
 * the size bound, and the capability's declared `inputSchema` (JSON Schema, checked with Ajv).
 *
 * A schema is compiled once per distinct schema: validators are cached by the SHA-256 of the
 * schema's JSON (stored as jsonb, so its key order is canonical), in a bounded LRU; a schema that
 * does not compile is cached as such too. Drafts 2020-12, 2019-09 and 07 are understood (by
 * `$schema`; none means draft-07). Ajv runs non-strict (unknown keywords are annotations, as the
 * JSON Schema specification says) with the standard formats, and never fetches remote `$ref`s.
 */
import { createHash } from 'node:crypto';
import { COMMAND_INPUT_MAX_BYTES, TetherError, type CapabilityDescriptor } from '@tether/contracts';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its default export is the module object.
const addFormats = (addFormatsModule as unknown as { default: <T>(ajv: T) => T }).default;

type Draft = '07' | '2019-09' | '2020-12';

interface Compiler {
  compile(schema: object): ValidateFunction;
  removeSchema(schema: object): unknown;
}

function compiler(draft: Draft): Compiler {
  const options = { strict: false, allErrors: true, validateSchema: true } as const;
  const ajv =
    draft === '2020-12'
      ? new Ajv2020(options)
      : draft === '2019-09'
        ? new Ajv2019(options)
        : new Ajv(options);
  addFormats(ajv);
  return ajv;
}

const compilers = new Map<Draft, Compiler>();

function draftOf(schema: Record<string, unknown>): Draft | null {
  const declared = schema.$schema;
  if (declared === undefined) return '07';
  if (typeof declared !== 'string') return null;
  if (/json-schema\.org\/draft\/2020-12\/schema#?$/.test(declared)) return '2020-12';
  if (/json-schema\.org\/draft\/2019-09\/schema#?$/.test(declared)) return '2019-09';
  if (/json-schema\.org\/draft-07\/schema#?$/.test(declared)) return '07';
  return null;
}

type Compiled = { ok: true; validate: ValidateFunction } | { ok: false; message: string };

const CACHE_MAX = 512;
const cache = new Map<string, Compiled>();

function compile(schema: Record<string, unknown>): Compiled {
  const draft = draftOf(schema);
  if (draft === null) {
    return {
      ok: false,
      message: '$schema must be JSON Schema draft 2020-12, 2019-09 or 07 (or absent: draft-07).',
    };
  }
  let ajv = compilers.get(draft);
  if (!ajv) compilers.set(draft, (ajv = compiler(draft)));
  try {
    return { ok: true, validate: ajv.compile(schema) };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  } finally {
    // Ajv keeps every compiled schema (and its $id) itself; the LRU below is the only cache.
    try {
      ajv.removeSchema(schema);
    } catch {
      // Nothing was registered.
    }
  }
}

/** The validator of a schema, compiled at most once while it stays in the cache. */
export function validatorFor(schema: Record<string, unknown>): Compiled {
  const key = createHash('sha256').update(JSON.stringify(schema)).digest('hex');
  const hit = cache.get(key);
  if (hit) {
    // Most recently used last.
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const compiled = compile(schema);
  cache.set(key, compiled);
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  return compiled;
}

/** How many validators are cached (tests). */
export function cachedValidators(): number {
  return cache.size;
}

export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value ?? null), 'utf8');
}

const MAX_REPORTED_ERRORS = 20;

function describeErrors(errors: ErrorObject[] | null | undefined): Record<string, unknown>[] {
  return (errors ?? []).slice(0, MAX_REPORTED_ERRORS).map((e) => ({
    path: e.instancePath === '' ? '/' : e.instancePath,
    keyword: e.keyword,
    message: e.message ?? 'is invalid',
  }));
}

/**
 * Throws the typed refusal when `command`/`input` do not fit the capability's descriptor:
 * `command.command_not_allowed`, `command.input_too_large`, `command.input_schema_invalid`,
 * `command.input_invalid`.
 */
export function checkInvocation(
  capability: string,
  descriptor: CapabilityDescriptor,
  command: string | undefined,
  input: unknown,
): void {
  const allowed = descriptor.commands;
  if (allowed !== undefined) {
    if (command === undefined || !allowed.includes(command)) {
      throw new TetherError(
        'command.command_not_allowed',
        command === undefined
          ? `Capability ${capability} needs a command: one of its allow-list.`
          : `Command ${command} is not in the allow-list of capability ${capability}.`,
        { capability, command: command ?? null, allowed },
      );
    }
  } else if (command !== undefined) {
    throw new TetherError(
      'command.command_not_allowed',
      `Capability ${capability} declares no commands; omit command.`,
      { capability, command, allowed: [] },
    );
  }
  const bytes = jsonBytes(input);
  if (bytes > COMMAND_INPUT_MAX_BYTES) {
    throw new TetherError(
      'command.input_too_large',
      `The input serialises to ${bytes} bytes; the limit is ${COMMAND_INPUT_MAX_BYTES}.`,
      { bytes, maxBytes: COMMAND_INPUT_MAX_BYTES },
    );
  }
  const schema = descriptor.inputSchema;
  if (schema === undefined) return;
  const compiled = validatorFor(schema);
  if (!compiled.ok) {
    throw new TetherError(
      'command.input_schema_invalid',
      `Capability ${capability} declares an inputSchema that cannot be used: ${compiled.message.slice(0, 300)}`,
      { capability },
    );
  }
  if (!compiled.validate(input)) {
    throw new TetherError(
      'command.input_invalid',
      `The input does not match the inputSchema of capability ${capability}.`,
      { capability, errors: describeErrors(compiled.validate.errors) },
    );
  }
}
