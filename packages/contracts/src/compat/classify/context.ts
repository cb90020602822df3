/**
 * The classifier's shared vocabulary: schema nodes, the two sides being compared, the
 * comparison context (with its work budget), and how a finding becomes a `CompatChange` whose
 * severity follows from the direction (input or output) and what the change does to the set of
 * accepted values.
 */
import type { CompatChange, CompatChangeKind, CompatSeverity, JsonSchema } from '../types.js';

export type SchemaObject = { readonly [keyword: string]: unknown };
export type SchemaDirection = 'input' | 'output';
/** What a change does to the set of accepted values. */
export type Effect = 'widened' | 'narrowed' | 'incompatible';

/** Keywords that never change which values are valid. */
export const ANNOTATION_KEYWORDS = new Set([
  '$schema',
  '$id',
  '$comment',
  '$anchor',
  '$defs',
  'definitions',
  'title',
  'description',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
]);

export interface Side {
  readonly root: JsonSchema;
  /** `$ref` nodes with sibling keywords, merged once so that node identity stays stable. */
  readonly merged: WeakMap<object, SchemaObject>;
}

export interface Context {
  readonly procedure: string;
  readonly direction: SchemaDirection;
  readonly before: Side;
  readonly after: Side;
  /** Pairs of (before, after) nodes being compared right now: met again, they are assumed equal. */
  readonly inProgress: Map<object, Set<object>>;
  remaining: number;
  exhausted: boolean;
}

export function spend(ctx: Context): boolean {
  if (ctx.remaining <= 0) {
    ctx.exhausted = true;
    return false;
  }
  ctx.remaining -= 1;
  return true;
}

function severityOf(direction: SchemaDirection, effect: Effect): CompatSeverity {
  if (effect === 'incompatible') return 'breaking';
  if (direction === 'input') return effect === 'widened' ? 'additive' : 'breaking';
  return effect === 'narrowed' ? 'additive' : 'breaking';
}

function reasonFor(direction: SchemaDirection, effect: Effect): string {
  if (effect === 'incompatible') return '';
  if (direction === 'input' && effect === 'narrowed') {
    return ' (old clients may send values the server now rejects)';
  }
  if (direction === 'output' && effect === 'widened') {
    return ' (old clients may receive values they do not expect)';
  }
  return '';
}

function formatPath(path: readonly string[]): string {
  return `/${path.join('/')}`;
}

/** A property name as a path segment, escaped as in a JSON pointer. */
export function fieldSegment(name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1');
}

export function push(
  ctx: Context,
  out: CompatChange[],
  path: readonly string[],
  kind: CompatChangeKind,
  severity: CompatSeverity,
  message: string,
): void {
  out.push({
    procedure: ctx.procedure,
    direction: ctx.direction,
    path: formatPath(path),
    kind,
    severity,
    message,
  });
}

export function pushEffect(
  ctx: Context,
  out: CompatChange[],
  path: readonly string[],
  kind: CompatChangeKind,
  effect: Effect,
  message: string,
): void {
  push(
    ctx,
    out,
    path,
    kind,
    severityOf(ctx.direction, effect),
    message + reasonFor(ctx.direction, effect),
  );
}

export function unclassified(
  ctx: Context,
  out: CompatChange[],
  path: readonly string[],
  message: string,
): void {
  push(ctx, out, path, 'unclassified-change', 'breaking', `${message}; cannot prove it compatible`);
}
