/**
 * JSON Schema snapshots of the wire contract: one file per procedure plus an index recording the
 * contract version they were written with. The same format is used for the working snapshots
 * (`snapshots/`) and for each release (`releases/<MAJOR.MINOR>/`). Everything here is pure (file
 * contents in, verdict out); `scripts/contract.ts` does the reading and writing.
 */
import { z } from 'zod';
import type { WireProcedure } from '../wire.js';
import { classifyContractChanges } from './classify.js';
import { isPlainObject, stableJson, toJsonValue } from './json.js';
import type { CompatChange, JsonSchema, ProcedureContract } from './types.js';

export const SNAPSHOT_INDEX_FILE = 'index.json';

const PROCEDURE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface ProcedureSnapshot extends ProcedureContract {
  readonly procedure: string;
}

export interface SnapshotIndex {
  readonly contractVersion: string;
  readonly procedures: readonly string[];
}

export function snapshotFileName(procedure: string): string {
  if (
    !PROCEDURE_NAME_PATTERN.test(procedure) ||
    procedure.includes('..') ||
    `${procedure}.json` === SNAPSHOT_INDEX_FILE
  ) {
    throw new Error(`procedure name ${JSON.stringify(procedure)} cannot name a snapshot file`);
  }
  return `${procedure}.json`;
}

/**
 * The published JSON Schema of one side of a procedure: what a party validating with it must
 * accept, so that it matches what the runtime Zod schema accepts when it parses.
 *
 * Zod renders a plain `z.object` (unknown keys stripped) as `additionalProperties: false` in
 * output mode, because the *parsed* value has no unknown keys. A client validating a response
 * accepts unknown keys (and strips them), so the published output schema leaves such an object
 * open: a server that adds a field stays valid for old clients. `z.strictObject` (unknown keys
 * rejected) stays closed on either side, and inputs are rendered as Zod renders them.
 */
export function publishedJsonSchema(schema: z.ZodType, side: 'input' | 'output'): JsonSchema {
  return toJsonValue(
    z.toJSONSchema(schema, {
      io: side,
      unrepresentable: 'any',
      ...(side === 'output'
        ? {
            override: ({ zodSchema, jsonSchema }) => {
              const def = zodSchema._zod.def;
              if (def.type === 'object' && def.catchall === undefined) {
                delete jsonSchema.additionalProperties;
              }
            },
          }
        : {}),
    }),
  ) as JsonSchema;
}

/** The JSON Schemas of one procedure, exactly as the snapshot records them. */
export function buildProcedureSnapshot(
  procedure: string,
  definition: WireProcedure,
): ProcedureSnapshot {
  return {
    procedure,
    kind: definition.kind,
    input: publishedJsonSchema(definition.input, 'input'),
    output: publishedJsonSchema(definition.output, 'output'),
  };
}

/** Every snapshot file (name → content) for a set of procedures and a contract version. */
export function renderSnapshotFiles(
  procedures: Readonly<Record<string, WireProcedure>>,
  contractVersion: string,
): Map<string, string> {
  const names = Object.keys(procedures).sort();
  const files = new Map<string, string>();
  for (const name of names) {
    files.set(snapshotFileName(name), stableJson(buildProcedureSnapshot(name, procedures[name]!)));
  }
  const index: SnapshotIndex = { contractVersion, procedures: names };
  files.set(SNAPSHOT_INDEX_FILE, stableJson(index));
  return files;
}

/** Parses a procedure snapshot file; `undefined` if it is not one. */
export function parseProcedureSnapshot(text: string): ProcedureContract | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(value) || typeof value.kind !== 'string') return undefined;
  const isSchema = (schema: unknown): schema is JsonSchema =>
    typeof schema === 'boolean' || isPlainObject(schema);
  if (!isSchema(value.input) || !isSchema(value.output)) return undefined;
  return { kind: value.kind, input: value.input, output: value.output };
}

/** Parses the index file; `undefined` if it is not one. */
export function parseSnapshotIndex(text: string): SnapshotIndex | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(value) || typeof value.contractVersion !== 'string') return undefined;
  const procedures = value.procedures;
  if (!Array.isArray(procedures) || !procedures.every((name) => typeof name === 'string'))
    return undefined;
  return { contractVersion: value.contractVersion, procedures };
}

export type SnapshotSet = ReadonlyMap<string, string>;

export interface SnapshotDiff {
  /** Files that should exist but do not. */
  readonly missing: readonly string[];
  /** Files that exist but should not (a removed procedure). */
  readonly extra: readonly string[];
  /** Files whose content is not what the current contract produces. */
  readonly different: readonly string[];
  readonly upToDate: boolean;
}

/** Which files of `actual` differ from `expected` (file name → exact content). */
export function diffSnapshotFiles(expected: SnapshotSet, actual: SnapshotSet): SnapshotDiff {
  const missing = [...expected.keys()].filter((name) => !actual.has(name)).sort();
  const extra = [...actual.keys()].filter((name) => !expected.has(name)).sort();
  const different = [...expected.keys()]
    .filter((name) => actual.has(name) && actual.get(name) !== expected.get(name))
    .sort();
  return {
    missing,
    extra,
    different,
    upToDate: missing.length === 0 && extra.length === 0 && different.length === 0,
  };
}

function procedureOf(fileName: string): string | undefined {
  return fileName.endsWith('.json') && fileName !== SNAPSHOT_INDEX_FILE
    ? fileName.slice(0, -'.json'.length)
    : undefined;
}

export interface ReadContracts {
  readonly contracts: Record<string, ProcedureContract>;
  /** Procedure files that do not parse, as breaking `unclassified-change`s. */
  readonly unreadable: readonly CompatChange[];
}

/** The procedure contracts a snapshot set records (the index file is skipped). */
export function readContracts(files: SnapshotSet): ReadContracts {
  const contracts: Record<string, ProcedureContract> = {};
  const unreadable: CompatChange[] = [];
  for (const [fileName, text] of files) {
    const procedure = procedureOf(fileName);
    if (procedure === undefined) continue;
    const parsed = parseProcedureSnapshot(text);
    if (parsed !== undefined) {
      contracts[procedure] = parsed;
    } else {
      unreadable.push({
        procedure,
        direction: 'procedure',
        path: '/',
        kind: 'unclassified-change',
        severity: 'breaking',
        message: `snapshot ${fileName} is not a readable procedure snapshot`,
      });
    }
  }
  return { contracts, unreadable };
}

/**
 * Every change from one snapshot set to another. A procedure whose `before` file cannot be read
 * is reported as a breaking unclassified change (nothing proves it compatible).
 */
export function classifySnapshotChanges(before: SnapshotSet, after: SnapshotSet): CompatChange[] {
  const b = readContracts(before);
  const a = readContracts(after);
  const comparable = { ...a.contracts };
  for (const change of b.unreadable) delete comparable[change.procedure];
  return [...b.unreadable, ...a.unreadable, ...classifyContractChanges(b.contracts, comparable)];
}

/** One line per change: `BREAKING procedure direction path: message`. */
export function formatCompatChange(change: CompatChange): string {
  return `${change.severity.toUpperCase()} ${change.procedure} ${change.direction} ${change.path}: ${change.message}`;
}
