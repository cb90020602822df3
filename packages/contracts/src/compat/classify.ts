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
 *
 * This file is the public API; the classifier itself lives in `classify/`: `context.ts` (the
 * comparison context and how findings become changes), `refs.ts` (`$ref` resolution),
 * `unions.ts` (nullability and alternatives, the recursion through `compareSchema`),
 * `keywords.ts` (keyword by keyword) and `structure.ts` (properties, items, `allOf`).
 */
import { deepEqual } from './json.js';
import type {
  CompatChange,
  CompatChangeKind,
  CompatSeverity,
  JsonSchema,
  ProcedureContract,
} from './types.js';
import { push, type Context, type SchemaDirection } from './classify/context.js';
import { compareSchema } from './classify/unions.js';

export interface SchemaChangeOptions {
  readonly procedure: string;
  readonly direction: SchemaDirection;
}

/** Upper bound on schema-node comparisons per classification: a guard, never reached by real contracts. */
const MAX_COMPARISONS = 200_000;

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
