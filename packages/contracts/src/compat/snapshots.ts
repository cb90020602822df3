/**
 * JSON Schema snapshots of the wire contract: one file per procedure plus an index recording the
 * contract version they were written with. Everything here is pure (file contents in, verdict
 * out); `scripts/snapshots.ts` does the reading and writing.
 */
import { z } from 'zod';
import type { WireProcedure } from '../wire.js';
import { classifyContractChanges } from './classify.js';
import { isPlainObject, stableJson, toJsonValue } from './json.js';
import {
  checkContractVersionBump,
  summarizeCompatChanges,
  type VersionBumpCheck,
} from './summary.js';
import type { CompatChange, CompatSummary, JsonSchema, ProcedureContract } from './types.js';

export const SNAPSHOT_INDEX_FILE = 'index.json';
export const SNAPSHOT_COMMAND = 'pnpm contracts:snapshot';

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

/** The JSON Schemas of one procedure, exactly as the snapshot records them. */
export function buildProcedureSnapshot(
  procedure: string,
  definition: WireProcedure,
): ProcedureSnapshot {
  return {
    procedure,
    kind: definition.kind,
    input: toJsonValue(
      z.toJSONSchema(definition.input, { io: 'input', unrepresentable: 'any' }),
    ) as JsonSchema,
    output: toJsonValue(
      z.toJSONSchema(definition.output, { io: 'output', unrepresentable: 'any' }),
    ) as JsonSchema,
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

export interface SnapshotCheck {
  /** Files that should exist but do not. */
  readonly missing: readonly string[];
  /** Files that exist but should not (a removed procedure). */
  readonly extra: readonly string[];
  /** Files whose content is not what the current contract produces. */
  readonly different: readonly string[];
  readonly upToDate: boolean;
  /** No snapshot is checked in at all (the first `write`): there is nothing to compare against. */
  readonly initial: boolean;
  /** What changed between the checked-in snapshots and the current contract. */
  readonly changes: readonly CompatChange[];
  readonly summary: CompatSummary;
  readonly currentVersion: string;
  /** The version in the checked-in index, or null when there is no readable index. */
  readonly recordedVersion: string | null;
  /** Whether CONTRACT_VERSION carries the bump the changes need; null without a recorded version. */
  readonly versionCheck: VersionBumpCheck | null;
  readonly ok: boolean;
}

function procedureOf(fileName: string): string | undefined {
  return fileName.endsWith('.json') && fileName !== SNAPSHOT_INDEX_FILE
    ? fileName.slice(0, -'.json'.length)
    : undefined;
}

/**
 * Compares the snapshot files the current contract produces (`expected`) with the checked-in
 * ones (`actual`), classifies every contract change between them and checks the version bump.
 */
export function checkSnapshotFiles(
  expected: ReadonlyMap<string, string>,
  actual: ReadonlyMap<string, string>,
  currentVersion: string,
): SnapshotCheck {
  const missing = [...expected.keys()].filter((name) => !actual.has(name)).sort();
  const extra = [...actual.keys()].filter((name) => !expected.has(name)).sort();
  const different = [...expected.keys()]
    .filter((name) => actual.has(name) && actual.get(name) !== expected.get(name))
    .sort();
  const upToDate = missing.length === 0 && extra.length === 0 && different.length === 0;

  const before: Record<string, ProcedureContract> = {};
  const after: Record<string, ProcedureContract> = {};
  const unreadable: CompatChange[] = [];
  for (const [fileName, text] of expected) {
    const procedure = procedureOf(fileName);
    const parsed = procedure === undefined ? undefined : parseProcedureSnapshot(text);
    if (procedure !== undefined && parsed !== undefined) after[procedure] = parsed;
  }
  for (const [fileName, text] of actual) {
    const procedure = procedureOf(fileName);
    if (procedure === undefined) continue;
    const parsed = parseProcedureSnapshot(text);
    if (parsed !== undefined) {
      before[procedure] = parsed;
    } else {
      // Nothing to compare against: the change cannot be shown to be compatible.
      delete after[procedure];
      unreadable.push({
        procedure,
        direction: 'procedure',
        path: '/',
        kind: 'unclassified-change',
        severity: 'breaking',
        message: `checked-in snapshot ${fileName} is not a readable procedure snapshot`,
      });
    }
  }
  const changes = [...unreadable, ...classifyContractChanges(before, after)];
  const summary = summarizeCompatChanges(changes);

  const indexText = actual.get(SNAPSHOT_INDEX_FILE);
  const index = indexText === undefined ? undefined : parseSnapshotIndex(indexText);
  const recordedVersion = index?.contractVersion ?? null;
  const versionCheck =
    recordedVersion === null
      ? null
      : checkContractVersionBump(recordedVersion, currentVersion, summary.bump);
  return {
    missing,
    extra,
    different,
    upToDate,
    initial: actual.size === 0,
    changes,
    summary,
    currentVersion,
    recordedVersion,
    versionCheck,
    ok: upToDate && (versionCheck?.ok ?? true),
  };
}

/** One line per change: `BREAKING procedure direction path: message`. */
export function formatCompatChange(change: CompatChange): string {
  return `${change.severity.toUpperCase()} ${change.procedure} ${change.direction} ${change.path}: ${change.message}`;
}

/** The human report of a check, as the CLI prints it. */
export function formatSnapshotCheck(check: SnapshotCheck, directory = 'snapshots'): string[] {
  if (check.ok) {
    return [`contract snapshots are up to date (contract version ${check.currentVersion})`];
  }
  const lines: string[] = [];
  for (const name of check.missing) lines.push(`missing snapshot: ${directory}/${name}`);
  for (const name of check.extra) lines.push(`extra snapshot: ${directory}/${name}`);
  for (const name of check.different) lines.push(`stale snapshot: ${directory}/${name}`);
  for (const change of check.changes) lines.push(formatCompatChange(change));
  if (check.initial) {
    lines.push('No snapshots are checked in yet.');
  } else if (!check.upToDate) {
    const { bump, breaking, additive } = check.summary;
    lines.push(
      bump === 'none'
        ? 'The snapshots are stale, but no contract change needs a version bump.'
        : `The snapshots are stale: ${breaking} breaking and ${additive} additive change(s) need a ${bump.toUpperCase()} version bump.`,
    );
  }
  if (check.recordedVersion === null && check.extra.length + check.different.length > 0) {
    lines.push(
      `The checked-in ${SNAPSHOT_INDEX_FILE} has no readable contractVersion; the version bump cannot be checked.`,
    );
  }
  if (check.versionCheck !== null && !check.versionCheck.ok) {
    lines.push(`Version check failed: ${check.versionCheck.message}.`);
    lines.push(
      `Raise CONTRACT_VERSION in packages/contracts/src/version.ts, then run \`${SNAPSHOT_COMMAND}\`.`,
    );
  } else {
    lines.push(`Run \`${SNAPSHOT_COMMAND}\` to regenerate the snapshots and check them in.`);
  }
  return lines;
}
