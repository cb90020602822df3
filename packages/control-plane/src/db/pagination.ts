/**
 * Keyset pagination. A cursor is the sort key of the last item returned, at the database's full
 * precision, tagged with the list it belongs to and encoded opaquely (base64url JSON). Stable
 * under concurrent inserts (no OFFSET).
 *
 * Invariants:
 *  - every list orders by a key that is unique per row (a timestamp plus the row's uuid, or the
 *    node id), and the cursor carries the whole key: a page never repeats a row, paging ends;
 *  - timestamps travel as text with microseconds, written by PostgreSQL (`cursorTimestamp`),
 *    never through a JavaScript `Date` (milliseconds): rows created within one millisecond
 *    would otherwise share a cursor position and be handed out again on every page;
 *  - a cursor is validated before it reaches SQL: malformed, tampered, or issued by another list
 *    → `request.invalid` (400, `details.field = "cursor"`), never a database error or a 500.
 */
import { NodeId, PAGE_LIMIT_DEFAULT, TetherError } from '@tether/contracts';

/** The lists that page by cursor; a cursor from one is refused by every other. */
export type CursorList = 'session' | 'participant' | 'node' | 'online' | 'token' | 'command';

/** One part of a sort key, with what makes it valid. */
type KeyPart = 'timestamp' | 'uuid' | 'nodeId';

const LIST_KEYS: Record<CursorList, readonly KeyPart[]> = {
  session: ['timestamp', 'uuid'],
  participant: ['timestamp', 'uuid'],
  token: ['timestamp', 'uuid'],
  command: ['timestamp', 'uuid'],
  node: ['nodeId'],
  online: ['nodeId'],
};

/**
 * SQL for a timestamptz column as cursor text: UTC, microseconds, `Z` — exactly what PostgreSQL
 * parses back to the same instant, whatever the session's TimeZone or DateStyle.
 */
export function cursorTimestamp(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function isTimestamp(value: string): boolean {
  const m = TIMESTAMP.exec(value);
  if (!m) return false;
  // A real calendar instant (no 30 February, no hour 24): it survives a round trip unchanged.
  const millis = `${value.slice(0, 23)}Z`;
  const date = new Date(millis);
  return !Number.isNaN(date.getTime()) && date.toISOString() === millis;
}

const VALID: Record<KeyPart, (value: string) => boolean> = {
  timestamp: isTimestamp,
  uuid: (value) => UUID.test(value),
  nodeId: (value) => NodeId.safeParse(value).success,
};

export function encodeCursor(list: CursorList, key: readonly string[]): string {
  return Buffer.from(JSON.stringify({ l: list, k: key }), 'utf8').toString('base64url');
}

function invalidCursor(): TetherError {
  return new TetherError('request.invalid', 'The cursor is not one this list issued.', {
    field: 'cursor',
  });
}

/** The sort key a cursor of `list` carries (null without a cursor); anything else is a 400. */
export function decodeCursor(list: CursorList, cursor: string | undefined): string[] | null {
  if (cursor === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  const parts = LIST_KEYS[list];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidCursor();
  const { l, k } = value as { l?: unknown; k?: unknown };
  if (l !== list || !Array.isArray(k) || k.length !== parts.length) throw invalidCursor();
  const key: string[] = [];
  for (const [i, part] of parts.entries()) {
    const item: unknown = k[i];
    if (typeof item !== 'string' || !VALID[part](item)) throw invalidCursor();
    key.push(item);
  }
  return key;
}

export function pageLimit(limit: number | undefined): number {
  return limit ?? PAGE_LIMIT_DEFAULT;
}

/** Given `limit + 1` rows, the page and the cursor to the next one. */
export function toPage<R, V>(
  rows: R[],
  limit: number,
  view: (row: R) => V,
  list: CursorList,
  key: (row: R) => readonly string[],
): { items: V[]; nextCursor: string | null } {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return {
    items: pageRows.map(view),
    nextCursor: more && last ? encodeCursor(list, key(last)) : null,
  };
}

/** Positional parameters for a statement assembled from optional filters (values never inlined). */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}
