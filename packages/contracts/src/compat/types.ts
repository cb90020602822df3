/** Shared types of the contract compatibility classifier. */

/** A JSON value as read from a snapshot file. */
export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A JSON Schema (draft 2020-12): an object of keywords, or `true` / `false`. */
export type JsonSchema = boolean | { readonly [keyword: string]: unknown };

/**
 * Which side of a procedure changed. `input` and `output` are the procedure's schemas;
 * `procedure` is a change to the procedure itself (added, removed, kind changed).
 */
export type CompatDirection = 'input' | 'output' | 'procedure';

/** `additive` needs a MINOR bump, `breaking` a MAJOR bump. */
export type CompatSeverity = 'additive' | 'breaking';

export interface CompatChange {
  readonly procedure: string;
  readonly direction: CompatDirection;
  /** JSON-pointer-ish path of the field: `/` is the root, `/[]` an array item, `/*` a record value, `/{key}` a record key. */
  readonly path: string;
  readonly kind: CompatChangeKind;
  readonly severity: CompatSeverity;
  readonly message: string;
}

export type CompatChangeKind =
  | 'procedure-added'
  | 'procedure-removed'
  | 'procedure-kind-changed'
  | 'field-added'
  | 'required-field-added'
  | 'field-removed'
  | 'field-became-required'
  | 'field-became-optional'
  | 'enum-widened'
  | 'enum-narrowed'
  | 'type-changed'
  | 'type-widened'
  | 'type-narrowed'
  | 'nullable-added'
  | 'nullable-removed'
  | 'constraint-tightened'
  | 'constraint-loosened'
  | 'constraint-changed'
  | 'union-widened'
  | 'union-narrowed'
  | 'default-changed'
  | 'unclassified-change';

/** The contract of one procedure as the snapshots record it. */
export interface ProcedureContract {
  readonly kind: string;
  readonly input: JsonSchema;
  readonly output: JsonSchema;
}

export type CompatOverallSeverity = 'none' | CompatSeverity;
export type VersionBump = 'none' | 'minor' | 'major';

export interface CompatSummary {
  readonly severity: CompatOverallSeverity;
  readonly bump: VersionBump;
  readonly additive: number;
  readonly breaking: number;
}
