import { TetherError } from '@tether/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db, type Sql } from '../../src/db/pool.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import { makeNode, makeParticipant, makeSession, uniqueName } from '../fixtures.js';

const t = useTestDatabase();

/** A second handle on the same database, so "visible from another connection" really is. */
let other: Db;
beforeAll(() => {
  other = createDb({ connectionString: t.url, max: 2, applicationName: 'tether-test-other' });
});
afterAll(async () => {
  await other?.close();
});

async function insertParticipant(sql: Sql, name: string): Promise<string> {
  const { rows } = await sql.query<{ id: string }>(
    `INSERT INTO participants (name, role) VALUES ($1, 'member') RETURNING id`,
    [name],
  );
  return rows[0]!.id;
}

async function participantExists(db: Db, name: string): Promise<boolean> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM participants WHERE name = $1`,
    [name],
  );
  return rows[0]!.n === 1;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value: unknown) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

/** Clients currently checked out of the pool: total minus idle. */
function checkedOut(db: Db): number {
  return db.pool.totalCount - db.pool.idleCount;
}

function pgCause(error: TetherError): { code?: string; constraint?: string } {
  return error.cause as { code?: string; constraint?: string };
}

describe('db.tx commit and rollback', () => {
  it('commits on return: the row is invisible to other connections until then, visible after', async () => {
    const name = uniqueName('commit');
    const result = await t.db.tx(async (sql) => {
      await insertParticipant(sql, name);
      // Uncommitted: another connection must not see it yet.
      expect(await participantExists(other, name)).toBe(false);
      return 'done';
    });
    expect(result).toBe('done');
    expect(await participantExists(other, name)).toBe(true);
  });

  it('rolls back on throw and rethrows the very same error object', async () => {
    const name = uniqueName('rollback');
    const thrown = new Error('boom');
    const caught = await rejection(
      t.db.tx(async (sql) => {
        await insertParticipant(sql, name);
        throw thrown;
      }),
    );
    expect(caught).toBe(thrown);
    expect(await participantExists(other, name)).toBe(false);
  });

  it('a plain (non-database) Error passes through unchanged, not wrapped in a TetherError', async () => {
    const thrown = new RangeError('not a db problem');
    const caught = await rejection(t.db.tx(async () => Promise.reject(thrown)));
    expect(caught).toBe(thrown);
    expect(caught).not.toBeInstanceOf(TetherError);
    expect((caught as Error).message).toBe('not a db problem');
  });

  it('a domain TetherError thrown inside tx passes through unchanged', async () => {
    const thrown = new TetherError('session.not_found', 'No such session.');
    const caught = await rejection(t.db.tx(async () => Promise.reject(thrown)));
    expect(caught).toBe(thrown);
  });

  it('a database error rolls back the writes made earlier in the same transaction', async () => {
    const name = uniqueName('partial');
    await expectTetherError(
      t.db.tx(async (sql) => {
        await insertParticipant(sql, name);
        await sql.query(`INSERT INTO participants (name, role) VALUES ($1, 'root')`, [
          uniqueName('bad'),
        ]);
      }),
      'request.invalid',
    );
    expect(await participantExists(other, name)).toBe(false);
  });

  it('a failed statement whose error fn swallows does not report a commit that never happened', async () => {
    const name = uniqueName('swallowed');
    await expectTetherError(
      t.db.tx(async (sql) => {
        await insertParticipant(sql, name);
        await sql.query(`SELECT 1/0`).catch(() => undefined);
        return 'looks fine';
      }),
      'system.internal',
    );
    expect(await participantExists(other, name)).toBe(false);
  });
});

describe('db.tx releases its client', () => {
  it('50 failing transactions on a pool of 8 leak no client, and a 51st transaction still runs', async () => {
    const failures = [
      async () => Promise.reject(new Error('plain')),
      async (sql: Sql) => sql.query(`SELECT 1/0`),
      async (sql: Sql) => sql.query(`INSERT INTO participants (name, role) VALUES ('x', 'root')`),
      async (sql: Sql) => sql.query(`SELEC broken`),
    ];
    for (let i = 0; i < 50; i++) {
      await rejection(t.db.tx(failures[i % failures.length]!));
      expect(checkedOut(t.db), `after failure ${i + 1}`).toBe(0);
    }
    expect(t.db.pool.totalCount).toBeLessThanOrEqual(8);
    expect(t.db.pool.waitingCount).toBe(0);

    // Concurrent failures beyond the pool size queue and still all come back.
    const concurrent = await Promise.all(
      Array.from({ length: 24 }, (_, i) => rejection(t.db.tx(failures[i % failures.length]!))),
    );
    expect(concurrent).toHaveLength(24);
    expect(checkedOut(t.db)).toBe(0);
    expect(t.db.pool.waitingCount).toBe(0);
    expect(t.db.pool.totalCount).toBeLessThanOrEqual(8);

    const name = uniqueName('after-failures');
    await t.db.tx((sql) => insertParticipant(sql, name));
    expect(await participantExists(other, name)).toBe(true);
    expect(checkedOut(t.db)).toBe(0);
  });

  it('successful transactions release their client too', async () => {
    for (let i = 0; i < 20; i++) {
      expect(
        await t.db.tx(
          async (sql) => (await sql.query<{ v: number }>(`SELECT $1::int AS v`, [i])).rows[0]!.v,
        ),
      ).toBe(i);
      expect(checkedOut(t.db)).toBe(0);
    }
  });

  it('a client broken mid-transaction is discarded, surfaces as system.unavailable, and the next tx works', async () => {
    // One connection only: if the dead client went back to the pool, the next tx would get it.
    const small = createDb({
      connectionString: t.url,
      max: 1,
      applicationName: 'tether-test-broken',
    });
    try {
      const before = (await small.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`)).rows[0]!
        .pid;
      const name = uniqueName('broken');
      const error = await expectTetherError(
        small.tx(async (sql) => {
          await insertParticipant(sql, name);
          await sql.query(`SELECT pg_terminate_backend(pg_backend_pid())`);
        }),
        'system.unavailable',
      );
      expect(error.httpStatus).toBe(503);
      expect(error.retryable).toBe(true);
      expect(small.pool.totalCount).toBe(0);
      expect(small.pool.waitingCount).toBe(0);

      const after = await small.tx(async (sql) => {
        await insertParticipant(sql, `${name}-next`);
        return (await sql.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`)).rows[0]!.pid;
      });
      expect(after).not.toBe(before);
      expect(await participantExists(other, name)).toBe(false);
      expect(await participantExists(other, `${name}-next`)).toBe(true);
      expect(checkedOut(small)).toBe(0);
    } finally {
      await small.close();
    }
  });
});

describe('SQLSTATE translation', () => {
  it('23505 on runtime_node_attachments_one_active_per_node → runtimenode.attach_conflict', async () => {
    const owner = await makeParticipant(t.db);
    const [a, b] = [await makeSession(t.db, owner), await makeSession(t.db, owner)];
    const node = await makeNode(t.db, owner);
    const insert = (sql: Sql, sessionId: string) =>
      sql.query(
        `INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, node_version, state)
         VALUES ($1, $2, $3, '1.0', 'online')`,
        [sessionId, owner.participantId, node.nodeId],
      );
    const error = await expectTetherError(
      t.db.tx(async (sql) => {
        await insert(sql, a);
        await insert(sql, b);
      }),
      'runtimenode.attach_conflict',
    );
    expect(error.httpStatus).toBe(409);
    expect(pgCause(error)).toMatchObject({
      code: '23505',
      constraint: 'runtime_node_attachments_one_active_per_node',
    });
    // Both inserts were in the rolled-back transaction.
    const { rows } = await t.db.query(`SELECT 1 FROM runtime_node_attachments WHERE node_id = $1`, [
      node.nodeId,
    ]);
    expect(rows).toHaveLength(0);
  });

  it('23505 on nodes_pkey → node.id_taken', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    const error = await expectTetherError(
      t.db.tx((sql) =>
        sql.query(
          `INSERT INTO nodes (node_id, owner_participant_id, name, node_type) VALUES ($1, $2, 'dup', 'daemon')`,
          [node.nodeId, owner.participantId],
        ),
      ),
      'node.id_taken',
    );
    expect(error.httpStatus).toBe(409);
    expect(pgCause(error)).toMatchObject({ code: '23505', constraint: 'nodes_pkey' });
  });

  it('23505 on the session_memberships unique key → membership.already_exists', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const error = await expectTetherError(
      t.db.tx((sql) =>
        sql.query(
          `INSERT INTO session_memberships (session_id, participant_id, role) VALUES ($1, $2, 'viewer')`,
          [session, owner.participantId],
        ),
      ),
      'membership.already_exists',
    );
    expect(error.httpStatus).toBe(409);
    expect(pgCause(error)).toMatchObject({
      code: '23505',
      constraint: 'session_memberships_session_participant_key',
    });
  });

  it('23503 membership for an unknown participant → participant.not_found', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const error = await expectTetherError(
      t.db.tx((sql) =>
        sql.query(
          `INSERT INTO session_memberships (session_id, participant_id, role) VALUES ($1, $2, 'viewer')`,
          [session, '00000000-0000-4000-8000-000000000000'],
        ),
      ),
      'participant.not_found',
    );
    expect(error.httpStatus).toBe(404);
    expect(pgCause(error)).toMatchObject({
      code: '23503',
      constraint: 'session_memberships_participant_id_fkey',
    });
  });

  it('23514 CHECK violation → request.invalid', async () => {
    const error = await expectTetherError(
      t.db.tx((sql) => sql.query(`INSERT INTO participants (name, role) VALUES ('x', 'root')`)),
      'request.invalid',
    );
    expect(error.httpStatus).toBe(400);
    expect(pgCause(error)).toMatchObject({ code: '23514', constraint: 'participants_role_check' });
  });

  it('an unknown error (42601 syntax) → system.internal that exposes no SQL text', async () => {
    const sqlText = `SELEC secret_column_marker FROM participants`;
    const error = await expectTetherError(
      t.db.tx((sql) => sql.query(sqlText)),
      'system.internal',
    );
    expect(error.httpStatus).toBe(500);
    expect(pgCause(error)).toMatchObject({ code: '42601' });
    const exposed = [error.message, JSON.stringify(error), JSON.stringify(error.toShape())].join(
      '\n',
    );
    expect(exposed).not.toMatch(/secret_column_marker|SELEC|participants|syntax/i);
  });

  it('the pool-level query path translates the same way as the transaction path', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    await expectTetherError(
      t.db.query(
        `INSERT INTO nodes (node_id, owner_participant_id, name, node_type) VALUES ($1, $2, 'dup', 'daemon')`,
        [node.nodeId, owner.participantId],
      ),
      'node.id_taken',
    );
    await expectTetherError(t.db.query(`SELEC 1`), 'system.internal');
    await expectTetherError(
      t.db.withClient((sql) =>
        sql.query(`INSERT INTO participants (name, role) VALUES ('x', 'root')`),
      ),
      'request.invalid',
    );
  });
});
