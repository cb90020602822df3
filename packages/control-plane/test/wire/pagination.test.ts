/**
 * Keyset pagination over the real wire, as a property: for every paginated list, rows whose sort
 * keys tie or nearly tie (the same microsecond, the same millisecond, one microsecond apart) are
 * paged at every limit 1–10 and each row comes back exactly once, in one stable order, and the
 * paging terminates. PostgreSQL keeps microseconds; a cursor that kept less would hand out the
 * same page forever. Timestamps the services would never produce this close are written through
 * SQL. Tampered cursors are typed 400s.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errorCode, query, type CallResult } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant, sessionOf } from './actors.js';

const LIMITS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
const RUNS = 6;

/** A millisecond boundary: an offset of 0 lands exactly on it, 1000 µs on the next one. */
const BASE = '2031-05-06T07:08:09.123Z';

/** Microseconds after BASE: ties, same-millisecond neighbours and the next millisecond. */
const offsetUs = fc.constantFrom(0, 0, 1, 2, 499, 999, 1000, 1001);
const offsets = fc.array(offsetUs, { minLength: 1, maxLength: 12 });

interface Page {
  items: Record<string, unknown>[];
  nextCursor: string | null;
}

type Fetch = (cursor: string | undefined, limit: number) => Promise<CallResult<Page>>;

/** Every page at `limit`; fails if it does not end within one page per row (plus the last). */
async function pageAll(fetchPage: Fetch, limit: number, key: string, total: number) {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let pages = 1; ; pages++) {
    const result = await fetchPage(cursor, limit);
    expect(result.status, result.raw).toBe(200);
    expect(result.data.items.length).toBeLessThanOrEqual(limit);
    ids.push(...result.data.items.map((item) => String(item[key])));
    if (result.data.nextCursor === null) break;
    if (pages > total + 1) {
      throw new Error(`limit ${limit}: still not done after ${pages} pages over ${total} rows`);
    }
    cursor = result.data.nextCursor;
  }
  return ids;
}

/** The same rows in the same order at every limit, each once, and exactly `expected`. */
async function checkEveryLimit(fetchPage: Fetch, key: string, expected: string[]) {
  for (const limit of LIMITS) {
    const ids = await pageAll(fetchPage, limit, key, expected.length);
    expect(new Set(ids).size, `limit ${limit}: a row came back twice`).toBe(ids.length);
    expect(ids, `limit ${limit}`).toEqual(expected);
  }
}

function byTimeThenId(rows: { id: string; offset: number }[]): string[] {
  return [...rows]
    .sort((a, b) => a.offset - b.offset || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((r) => r.id);
}

async function setCreatedAt(
  server: TestServer,
  table: 'sessions' | 'participants' | 'api_tokens',
  rows: { id: string; offset: number }[],
) {
  await server.db.query(
    `UPDATE ${table} t SET created_at = $1::timestamptz + (v.us || ' microseconds')::interval
       FROM unnest($2::uuid[], $3::int[]) AS v(id, us)
      WHERE t.id = v.id`,
    [BASE, rows.map((r) => r.id), rows.map((r) => r.offset)],
  );
}

describe('keyset pagination', () => {
  it('session.list pages sessions created within the same millisecond exactly once at every limit', async () => {
    await using server = await startTestServer();
    await fc.assert(
      fc.asyncProperty(offsets, async (created) => {
        const owner = await participant(server);
        const rows: { id: string; offset: number }[] = [];
        for (const offset of created) rows.push({ id: await sessionOf(server, owner), offset });
        await setCreatedAt(server, 'sessions', rows);
        await checkEveryLimit(
          (cursor, limit) =>
            query<Page>(server.url, 'session.list', { cursor, limit }, { token: owner.token }),
          'sessionId',
          byTimeThenId(rows),
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('participant.list pages participants created within the same millisecond exactly once at every limit', async () => {
    await using server = await startTestServer();
    await fc.assert(
      fc.asyncProperty(offsets, async (created) => {
        const rows = created.map((offset) => ({ id: randomUUID(), offset }));
        await server.db.query(
          `INSERT INTO participants (id, name, role) SELECT id, 'paged ' || id, 'member' FROM unnest($1::uuid[]) AS t(id)`,
          [rows.map((r) => r.id)],
        );
        // The admin the test server made is listed too, first: it was created before BASE.
        await setCreatedAt(server, 'participants', rows);
        try {
          await checkEveryLimit(
            (cursor, limit) =>
              query<Page>(
                server.url,
                'participant.list',
                { cursor, limit },
                { token: server.adminToken },
              ),
            'participantId',
            [server.adminParticipantId, ...byTimeThenId(rows)],
          );
        } finally {
          await server.db.query(`DELETE FROM participants WHERE id = ANY($1::uuid[])`, [
            rows.map((r) => r.id),
          ]);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('token.list pages tokens created within the same millisecond exactly once at every limit', async () => {
    await using server = await startTestServer();
    await fc.assert(
      fc.asyncProperty(offsets, async (created) => {
        const owner = await participant(server);
        const rows = created.map((offset) => ({ id: randomUUID(), offset }));
        await server.db.query(
          `INSERT INTO api_tokens (id, participant_id, token_hash, name)
           SELECT id, $2, sha256(convert_to(id::text, 'UTF8')), 'paged' FROM unnest($1::uuid[]) AS t(id)`,
          [rows.map((r) => r.id), owner.participantId],
        );
        await setCreatedAt(server, 'api_tokens', rows);
        const { rows: initial } = await server.db.query<{ id: string }>(
          `SELECT id FROM api_tokens WHERE participant_id = $1 AND NOT (id = ANY($2::uuid[]))`,
          [owner.participantId, rows.map((r) => r.id)],
        );
        // The owner's own first token was created before BASE: listed first.
        await checkEveryLimit(
          (cursor, limit) =>
            query<Page>(server.url, 'token.list', { cursor, limit }, { token: owner.token }),
          'tokenId',
          [initial[0]!.id, ...byTimeThenId(rows)],
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('node.list and node.findOnlineWithCapability page every node exactly once at every limit', async () => {
    await using server = await startTestServer();
    // Ids sharing prefixes and differing only in case or punctuation: orderings disagree there.
    const idChar = fc.constantFrom('a', 'A', 'b', '0', '9', '-', '.', ':', '_');
    const suffixes = fc.uniqueArray(fc.string({ unit: idChar, minLength: 0, maxLength: 4 }), {
      minLength: 1,
      maxLength: 12,
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(suffixes, async (names) => {
        run++;
        const owner = await participant(server);
        const ids: string[] = [];
        for (const name of names) ids.push((await nodeOf(server, owner, `n${run}${name}`)).nodeId);
        await server.db.query(
          `UPDATE nodes SET capabilities = '{"gpu": {}}'::jsonb WHERE node_id = ANY($1::text[])`,
          [ids],
        );
        await server.db.query(
          `UPDATE runtime_node_presence SET health_state = 'online', last_heartbeat_at = now(), online_since = now()
            WHERE node_id = ANY($1::text[])`,
          [ids],
        );
        const whole = await query<Page>(
          server.url,
          'node.list',
          { limit: 500 },
          { token: owner.token },
        );
        expect(whole.status, whole.raw).toBe(200);
        const order = whole.data.items.map((n) => String(n.nodeId));
        expect([...order].sort()).toEqual([...ids].sort());
        await checkEveryLimit(
          (cursor, limit) =>
            query<Page>(server.url, 'node.list', { cursor, limit }, { token: owner.token }),
          'nodeId',
          order,
        );
        await checkEveryLimit(
          (cursor, limit) =>
            query<Page>(
              server.url,
              'node.findOnlineWithCapability',
              { capability: 'gpu', cursor, limit },
              { token: owner.token },
            ),
          'nodeId',
          order,
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('a tampered, foreign or malformed cursor is request.invalid (400), never a 500', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    await sessionOf(server, owner);
    await sessionOf(server, owner);
    await nodeOf(server, owner);
    await nodeOf(server, owner);
    const asOwner = { token: owner.token };
    const sessions = await query<Page>(server.url, 'session.list', { limit: 1 }, asOwner);
    const nodes = await query<Page>(server.url, 'node.list', { limit: 1 }, asOwner);
    expect(sessions.data.nextCursor).not.toBeNull();
    expect(nodes.data.nextCursor).not.toBeNull();
    const sessionCursor = sessions.data.nextCursor!;
    const nodeCursor = nodes.data.nextCursor!;

    const encode = (value: unknown) =>
      Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
    const decoded = JSON.parse(Buffer.from(sessionCursor, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    const tamper = (key: unknown) => encode({ ...decoded, k: key });
    const bad: [string, string, string][] = [
      ['session.list', 'not base64 json', '!!!'],
      ['session.list', 'a JSON string', encode('2031-05-06')],
      ['session.list', 'a node cursor', nodeCursor],
      ['node.list', 'a session cursor', sessionCursor],
      ['node.findOnlineWithCapability', 'a node.list cursor', nodeCursor],
      [
        'session.list',
        'a date that is not one',
        tamper(['2031-02-30T00:00:00.000000Z', randomUUID()]),
      ],
      [
        'session.list',
        'a year out of range',
        tamper(['99999-01-01T00:00:00.000000Z', randomUUID()]),
      ],
      ['session.list', 'not a uuid', tamper(['2031-05-06T07:08:09.123000Z', 'x'])],
      ['session.list', 'a NUL byte', tamper(['2031-05-06T07:08:09.123000Z\u0000', randomUUID()])],
      ['session.list', 'a number for a timestamp', tamper([1, randomUUID()])],
      [
        'session.list',
        'too many parts',
        tamper(['2031-05-06T07:08:09.123000Z', randomUUID(), 'x']),
      ],
      ['participant.list', 'a session cursor', sessionCursor],
    ];
    for (const [path, name, cursor] of bad) {
      const input =
        path === 'node.findOnlineWithCapability' ? { capability: 'gpu', cursor } : { cursor };
      const token = path === 'participant.list' ? server.adminToken : owner.token;
      const result = await query(server.url, path, input, { token });
      expect(result.status, `${path}: ${name}: ${result.raw}`).toBe(400);
      expect(errorCode(result), name).toBe('request.invalid');
      expect(result.error?.data.tetherError.details, name).toMatchObject({ field: 'cursor' });
    }
    // Still serving, and the genuine cursors still work.
    const next = await query<Page>(
      server.url,
      'session.list',
      { cursor: sessionCursor, limit: 1 },
      asOwner,
    );
    expect(next.status).toBe(200);
    expect(next.data.items).toHaveLength(1);
  });
});
