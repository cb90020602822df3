/**
 * Keyset pagination: a cursor is the opaque (base64url JSON) sort key of the last item returned.
 * Stable under concurrent inserts (no OFFSET), and a tampered cursor is a typed 400.
 */
import { PAGE_LIMIT_DEFAULT, TetherError } from '@tether/contracts';

export function encodeCursor(key: readonly string[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined, arity: number): string[] | null {
  if (cursor === undefined) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === arity &&
      value.every((v) => typeof v === 'string')
    ) {
      return value;
    }
  } catch {
    // fall through to the typed error
  }
  throw new TetherError('request.invalid', 'The cursor is not one this server issued.', {
    field: 'cursor',
  });
}

/**
 * A timestamp column as a cursor key: UTC with PostgreSQL's full microseconds. (A JavaScript
 * Date keeps milliseconds only: a key made from it sorts before its own row, which then comes
 * back on the next page.)
 */
export function cursorTime(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

export function pageLimit(limit: number | undefined): number {
  return limit ?? PAGE_LIMIT_DEFAULT;
}

/** Given `limit + 1` rows, the page and the cursor to the next one. */
export function toPage<R, V>(
  rows: R[],
  limit: number,
  view: (row: R) => V,
  key: (row: R) => readonly string[],
): { items: V[]; nextCursor: string | null } {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return { items: pageRows.map(view), nextCursor: more && last ? encodeCursor(key(last)) : null };
}

/** Positional parameters for a statement assembled from optional filters (values never inlined). */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}
