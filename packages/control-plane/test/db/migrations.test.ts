import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TetherError } from '@tether/contracts';
import pg from 'pg';
import { migrate } from 'postgres-migrations';
import { describe, expect, inject, it } from 'vitest';
import { MIGRATIONS_DIR, runMigrations } from '../../src/db/migrate.js';
import type { Db } from '../../src/db/pool.js';
import { updatesIn, useTestDatabase } from '../db.js';
import { makeNode, makeParticipant, makeSession } from '../fixtures.js';
import { adminQuery, databaseUrl } from '../postgres.js';

const t = useTestDatabase();

const MISSING_UUID = '00000000-0000-4000-8000-000000000000';

/**
 * The spec's columns, as `name udt_name nullable` — straight from migrations/1_initial-schema.sql.
 * YES = nullable, NO = NOT NULL (or a primary key).
 */
const SPEC_COLUMNS: Record<string, string[]> = {
  participants: [
    'id uuid NO',
    'name text NO',
    'role text NO',
    'created_at timestamptz NO',
    'disabled_at timestamptz YES',
  ],
  api_tokens: [
    'id uuid NO',
    'participant_id uuid NO',
    'token_hash bytea NO',
    'name text NO',
    'created_at timestamptz NO',
    'last_used_at timestamptz YES',
    'expires_at timestamptz YES',
    'revoked_at timestamptz YES',
    // Migration 9: the token that created this one (token.create), for the revocation cascade.
    'created_by_token_id uuid YES',
  ],
  sessions: [
    'id uuid NO',
    'name text NO',
    'state text NO',
    'min_node_version text YES',
    'created_by uuid NO',
    'created_at timestamptz NO',
    'updated_at timestamptz NO',
  ],
  session_memberships: [
    'id uuid NO',
    'session_id uuid NO',
    'participant_id uuid NO',
    'role text NO',
    'state text NO',
    'joined_at timestamptz NO',
    'updated_at timestamptz NO',
  ],
  nodes: [
    'node_id text NO',
    'owner_participant_id uuid NO',
    'name text NO',
    'node_type text NO',
    'platform text YES',
    'location text YES',
    'labels jsonb NO',
    'metadata jsonb NO',
    'capabilities jsonb NO',
    'node_version text YES',
    'token_hash bytea YES',
    'status text NO',
    'enrolled_at timestamptz NO',
    'updated_at timestamptz NO',
    'revoked_at timestamptz YES',
    // Migration 11: targeting by capability picks the least recently commanded node.
    'last_commanded_at timestamptz YES',
  ],
  // Migration 11: commands.
  node_commands: [
    'id uuid NO',
    'node_id text NO',
    'capability text NO',
    'command text YES',
    'input jsonb NO',
    'state text NO',
    'caller_participant_id uuid NO',
    'session_id uuid YES',
    'idempotency_key text NO',
    'fingerprint text NO',
    'targeted_by text NO',
    'timeout_ms int4 NO',
    'created_at timestamptz NO',
    'expires_at timestamptz NO',
    'delivered_at timestamptz YES',
    'started_at timestamptz YES',
    'finished_at timestamptz YES',
    'attempts int4 NO',
    'output jsonb YES',
    'error jsonb YES',
    'decided_by uuid YES',
    'revision int4 NO',
  ],
  enrollment_keys: [
    'id uuid NO',
    'key_hash bytea NO',
    'created_by uuid NO',
    'reusable bool NO',
    'labels jsonb NO',
    'created_at timestamptz NO',
    'expires_at timestamptz NO',
    'revoked_at timestamptz YES',
    'use_count int4 NO',
    'last_used_at timestamptz YES',
    // Migration 9: the token that created the key (capped at its expiry, revoked with it).
    'created_by_token_id uuid YES',
  ],
  pairing_requests: [
    'id uuid NO',
    'pairing_code text NO',
    'claim_secret_hash bytea NO',
    'state text NO',
    'name text NO',
    'node_type text NO',
    'platform text YES',
    'requested_node_id text YES',
    'metadata jsonb NO',
    'requester_address text YES',
    'created_at timestamptz NO',
    'updated_at timestamptz NO',
    'expires_at timestamptz NO',
    'decided_by uuid YES',
    'decided_at timestamptz YES',
    'node_id text YES',
    'claimed_at timestamptz YES',
  ],
  runtime_node_attachments: [
    'id uuid NO',
    'session_id uuid NO',
    'participant_id uuid NO',
    'node_id text NO',
    'capabilities jsonb NO',
    'node_version text NO',
    'state text NO',
    'attached_at timestamptz NO',
    'updated_at timestamptz NO',
    // Migration 13: the digest of the declared capabilities, compared with a resume claim.
    'capabilities_digest text YES',
  ],
  runtime_node_presence: [
    'node_id text NO',
    'health_state text NO',
    'last_heartbeat_at timestamptz YES',
    'online_since timestamptz YES',
    'connection_id text YES',
    'metrics jsonb YES',
    'changed_at timestamptz NO',
    'metrics_reported_at timestamptz YES',
    'metrics_slot int2 NO',
  ],
  runtime_node_metrics: [
    'node_id text NO',
    'slot int2 NO',
    'sampled_at timestamptz NO',
    'cpu_percent float8 YES',
    'memory_used_bytes float8 YES',
    'memory_total_bytes float8 YES',
    'uptime_seconds float8 YES',
    'gauges jsonb YES',
  ],
  fleet_events: [
    'id int8 NO',
    'at timestamptz NO',
    'type text NO',
    'node_id text YES',
    'session_id uuid YES',
    'payload jsonb NO',
  ],
};

interface PgFailure {
  code?: string;
  constraint?: string;
}

/** Awaits a rejected database call and returns the PostgreSQL error behind the TetherError. */
async function pgFailure(promise: Promise<unknown>): Promise<PgFailure> {
  const error = await promise.then(
    (value: unknown) => {
      throw new Error(`expected the statement to fail, got ${JSON.stringify(value)}`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TetherError);
  const cause = (error as TetherError).cause as PgFailure | undefined;
  expect(cause, 'the original pg error is kept as cause').toBeDefined();
  return cause!;
}

async function count(db: Db, text: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (${text}) q`,
    params,
  );
  return rows[0]!.n;
}

async function migrationFiles(): Promise<string[]> {
  return (await readdir(MIGRATIONS_DIR))
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .sort((a, b) => parseInt(a, 10) - parseInt(b, 10)); // applied in numeric order (10 after 9)
}

describe('schema: tables and columns', () => {
  it('every spec table exists with exactly the spec columns, types and nullability', async () => {
    const { rows } = await t.db.query<{
      table_name: string;
      column_name: string;
      udt_name: string;
      is_nullable: string;
    }>(
      `SELECT table_name, column_name, udt_name, is_nullable
         FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = ANY($1)
        ORDER BY table_name, ordinal_position`,
      [Object.keys(SPEC_COLUMNS)],
    );
    const actual: Record<string, string[]> = {};
    for (const r of rows)
      (actual[r.table_name] ??= []).push(`${r.column_name} ${r.udt_name} ${r.is_nullable}`);
    expect(Object.keys(actual).sort()).toEqual(Object.keys(SPEC_COLUMNS).sort());
    for (const [table, columns] of Object.entries(SPEC_COLUMNS)) {
      expect(actual[table], table).toEqual(columns);
    }
  });

  it('all spec tables are ordinary tables in the public schema', async () => {
    const { rows } = await t.db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    const tables = rows.map((r) => r.table_name);
    for (const table of Object.keys(SPEC_COLUMNS)) expect(tables, table).toContain(table);
  });
});

describe('schema: CHECK constraints reject values outside their enums and formats', () => {
  it("runtime_node_attachments.state rejects 'bogus' and accepts every spec state", async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    const insert = async (state: string) => {
      const session = await makeSession(t.db, owner);
      return t.db.query(
        `INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, node_version, state)
         VALUES ($1, $2, $3, '1.0', $4)`,
        [session, owner.participantId, node.nodeId, state],
      );
    };
    expect(await pgFailure(insert('bogus'))).toMatchObject({
      code: '23514',
      constraint: 'runtime_node_attachments_state_check',
    });
    // At most one active row per node, so one active state and the inactive ones.
    for (const state of ['online', 'offline', 'revoked']) await insert(state);
  });

  it("runtime_node_presence.health_state rejects 'asleep'", async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    const set = (health: string) =>
      t.db.query(`UPDATE runtime_node_presence SET health_state = $2 WHERE node_id = $1`, [
        node.nodeId,
        health,
      ]);
    expect(await pgFailure(set('asleep'))).toMatchObject({
      code: '23514',
      constraint: 'runtime_node_presence_health_state_check',
    });
    for (const health of ['online', 'degraded', 'offline'])
      expect((await set(health)).rowCount).toBe(1);
  });

  it("session_memberships.role rejects 'god'", async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const insert = async (role: string) => {
      const member = await makeParticipant(t.db);
      return t.db.query(
        `INSERT INTO session_memberships (session_id, participant_id, role) VALUES ($1, $2, $3)`,
        [session, member.participantId, role],
      );
    };
    expect(await pgFailure(insert('god'))).toMatchObject({
      code: '23514',
      constraint: 'session_memberships_role_check',
    });
    for (const role of ['owner', 'collaborator', 'runtime contributor', 'viewer'])
      await insert(role);
  });

  it("participants.role rejects 'root'", async () => {
    const insert = (role: string) =>
      t.db.query(`INSERT INTO participants (name, role) VALUES ('p', $1)`, [role]);
    expect(await pgFailure(insert('root'))).toMatchObject({
      code: '23514',
      constraint: 'participants_role_check',
    });
    for (const role of ['admin', 'member']) await insert(role);
  });

  it("nodes.node_id rejects ' bad', the empty string and 257 characters; 256 is accepted", async () => {
    const owner = await makeParticipant(t.db);
    const insert = (nodeId: string) =>
      t.db.query(
        `INSERT INTO nodes (node_id, owner_participant_id, name, node_type) VALUES ($1, $2, 'n', 'daemon')`,
        [nodeId, owner.participantId],
      );
    for (const bad of [' bad', '', 'a'.repeat(257), '-leading-dash', 'has space', 'slash/y']) {
      expect(await pgFailure(insert(bad)), JSON.stringify(bad)).toMatchObject({
        code: '23514',
        constraint: 'nodes_node_id_check',
      });
    }
    for (const good of ['a'.repeat(256), 'x', 'node-1.host:9_a']) await insert(good);
  });

  it("sessions.min_node_version rejects '01.0' and other non-MAJOR.MINOR floors", async () => {
    const owner = await makeParticipant(t.db);
    const insert = (floor: string) =>
      t.db.query(`INSERT INTO sessions (name, min_node_version, created_by) VALUES ('s', $1, $2)`, [
        floor,
        owner.participantId,
      ]);
    for (const bad of [
      '01.0',
      '1.01',
      '1',
      '1.2.3',
      'v1.0',
      '1.',
      '.1',
      '-1.0',
      `1${'0'.repeat(62)}.0`,
    ]) {
      expect(await pgFailure(insert(bad)), bad).toMatchObject({
        code: '23514',
        constraint: 'sessions_min_node_version_format',
      });
    }
    // 64 characters is the longest floor allowed; the 65-character one above is refused.
    for (const good of ['0.0', '1.10', '10.0', `1${'0'.repeat(61)}.0`]) await insert(good);
    await t.db.query(
      `INSERT INTO sessions (name, min_node_version, created_by) VALUES ('s', NULL, $1)`,
      [owner.participantId],
    );
  });
});

describe('schema: attachment uniqueness', () => {
  it('the partial unique index exists on (node_id) with the active-states predicate', async () => {
    const { rows } = await t.db.query<{
      indisunique: boolean;
      columns: string[];
      predicate: string | null;
    }>(
      `SELECT i.indisunique,
              array(SELECT a.attname::text FROM unnest(i.indkey) k JOIN pg_attribute a
                      ON a.attrelid = i.indrelid AND a.attnum = k) AS columns,
              pg_get_expr(i.indpred, i.indrelid) AS predicate
         FROM pg_index i
        WHERE i.indexrelid = 'public.runtime_node_attachments_one_active_per_node'::regclass`,
    );
    expect(rows).toHaveLength(1);
    const index = rows[0]!;
    expect(index.indisunique).toBe(true);
    expect(index.columns).toEqual(['node_id']);
    expect(index.predicate).not.toBeNull();
    const states = [...index.predicate!.matchAll(/'([a-z]+)'/g)].map((m) => m[1]).sort();
    expect(states).toEqual(['degraded', 'online', 'registering']);

    const { rows: listed } = await t.db.query<{ indexdef: string }>(
      `SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname = 'runtime_node_attachments_one_active_per_node'`,
    );
    expect(listed[0]?.indexdef).toMatch(/^CREATE UNIQUE INDEX .* \(node_id\) WHERE /);
  });

  it('a second active attachment for a node is refused by the index; inactive ones are not', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    const insert = async (state: string) =>
      t.db.query(
        `INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, node_version, state)
         VALUES ($1, $2, $3, '1.0', $4)`,
        [await makeSession(t.db, owner), owner.participantId, node.nodeId, state],
      );
    await insert('registering');
    await insert('offline');
    await insert('revoked');
    for (const active of ['registering', 'online', 'degraded']) {
      expect(await pgFailure(insert(active)), active).toMatchObject({
        code: '23505',
        constraint: 'runtime_node_attachments_one_active_per_node',
      });
    }
    expect(
      await count(t.db, `SELECT 1 FROM runtime_node_attachments WHERE node_id = $1`, [node.nodeId]),
    ).toBe(3);
  });

  it('unique (node_id, session_id) holds even when both rows are inactive', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    const session = await makeSession(t.db, owner);
    const insert = (state: string) =>
      t.db.query(
        `INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, node_version, state)
         VALUES ($1, $2, $3, '1.0', $4)`,
        [session, owner.participantId, node.nodeId, state],
      );
    await insert('offline');
    expect(await pgFailure(insert('offline'))).toMatchObject({
      code: '23505',
      constraint: 'runtime_node_attachments_node_session_key',
    });
  });
});

describe('schema: foreign keys reject orphans', () => {
  it('every reference to a missing row fails with 23503 on its named constraint', async () => {
    const owner = await makeParticipant(t.db);
    const session = await makeSession(t.db, owner);
    const node = await makeNode(t.db, owner);
    const hash = () => randomBytes(32);
    const cases: { constraint: string; text: string; params: unknown[] }[] = [
      {
        constraint: 'api_tokens_participant_id_fkey',
        text: `INSERT INTO api_tokens (participant_id, token_hash, name) VALUES ($1, $2, 't')`,
        params: [MISSING_UUID, hash()],
      },
      {
        constraint: 'sessions_created_by_fkey',
        text: `INSERT INTO sessions (name, created_by) VALUES ('s', $1)`,
        params: [MISSING_UUID],
      },
      {
        constraint: 'session_memberships_session_id_fkey',
        text: `INSERT INTO session_memberships (session_id, participant_id, role) VALUES ($1, $2, 'viewer')`,
        params: [MISSING_UUID, owner.participantId],
      },
      {
        constraint: 'session_memberships_participant_id_fkey',
        text: `INSERT INTO session_memberships (session_id, participant_id, role) VALUES ($1, $2, 'viewer')`,
        params: [session, MISSING_UUID],
      },
      {
        constraint: 'nodes_owner_participant_id_fkey',
        text: `INSERT INTO nodes (node_id, owner_participant_id, name, node_type) VALUES ('orphan-node', $1, 'n', 'd')`,
        params: [MISSING_UUID],
      },
      {
        constraint: 'enrollment_keys_created_by_fkey',
        text: `INSERT INTO enrollment_keys (key_hash, created_by, expires_at) VALUES ($1, $2, now() + interval '1 hour')`,
        params: [hash(), MISSING_UUID],
      },
      {
        constraint: 'pairing_requests_decided_by_fkey',
        text: `INSERT INTO pairing_requests (pairing_code, claim_secret_hash, name, node_type, expires_at, decided_by)
               VALUES ('ABCD', $1, 'n', 'd', now() + interval '1 hour', $2)`,
        params: [hash(), MISSING_UUID],
      },
      {
        constraint: 'pairing_requests_node_id_fkey',
        text: `INSERT INTO pairing_requests (pairing_code, claim_secret_hash, name, node_type, expires_at, node_id)
               VALUES ('ABCE', $1, 'n', 'd', now() + interval '1 hour', 'no-such-node')`,
        params: [hash()],
      },
      {
        constraint: 'runtime_node_attachments_session_id_fkey',
        text: `INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, node_version)
               VALUES ($1, $2, $3, '1.0')`,
        params: [MISSING_UUID, owner.participantId, node.nodeId],
      },
      {
        constraint: 'runtime_node_attachments_participant_id_fkey',
        text: `INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, node_version)
               VALUES ($1, $2, $3, '1.0')`,
        params: [session, MISSING_UUID, node.nodeId],
      },
      {
        constraint: 'runtime_node_attachments_node_id_fkey',
        text: `INSERT INTO runtime_node_attachments (session_id, participant_id, node_id, node_version)
               VALUES ($1, $2, 'no-such-node', '1.0')`,
        params: [session, owner.participantId],
      },
      {
        constraint: 'runtime_node_presence_node_id_fkey',
        text: `INSERT INTO runtime_node_presence (node_id) VALUES ('no-such-node')`,
        params: [],
      },
    ];
    for (const c of cases) {
      expect(await pgFailure(t.db.query(c.text, c.params)), c.constraint).toMatchObject({
        code: '23503',
        constraint: c.constraint,
      });
    }
  });
});

describe('migrations: idempotence and concurrency', () => {
  it('running runMigrations on an already-migrated database applies nothing', async () => {
    const before = await t.db.query(`SELECT id, name, hash FROM migrations ORDER BY id`);
    const result = await runMigrations(t.url);
    expect(result.applied).toEqual([]);
    const after = await t.db.query(`SELECT id, name, hash FROM migrations ORDER BY id`);
    expect(after.rows).toEqual(before.rows);
    // The library's own bootstrap migration plus every file in migrations/.
    expect(after.rows).toHaveLength((await migrationFiles()).length + 1);
  });

  it('three concurrent runners on a fresh database succeed and record each migration exactly once', async () => {
    const adminUrl = inject('pgAdminUrl');
    const runId = inject('pgTemplateDatabase').replace('tether_template_', '');
    const name = `tether_t_${runId}_fresh_${randomBytes(4).toString('hex')}`;
    await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
    const url = databaseUrl(adminUrl, name);
    try {
      const results = await Promise.all([
        runMigrations(url),
        runMigrations(url),
        runMigrations(url),
      ]);
      const files = await migrationFiles();
      // Exactly one runner applied the lot; the others found nothing to do.
      const applied = results.map((r) => r.applied).sort((a, b) => b.length - a.length);
      expect(applied[0]).toEqual(['0_create-migrations-table.sql', ...files]);
      expect(applied.slice(1)).toEqual([[], []]);

      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query<{ id: number; copies: number }>(
          `SELECT id, count(*)::int AS copies FROM migrations GROUP BY id ORDER BY id`,
        );
        expect(rows).toEqual(
          Array.from({ length: files.length + 1 }, (_, id) => ({ id, copies: 1 })),
        );
        const tables = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY($1)`,
          [Object.keys(SPEC_COLUMNS)],
        );
        expect(tables.rows[0]!.n).toBe(Object.keys(SPEC_COLUMNS).length);
      } finally {
        await client.end();
      }
    } finally {
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });
});

describe('migration 14: the node software version is nodeVersion', () => {
  it('renames the columns and rewrites stored runtimenode.attached payloads, leaving other events alone', async () => {
    const adminUrl = inject('pgAdminUrl');
    const runId = inject('pgTemplateDatabase').replace('tether_template_', '');
    const name = `tether_t_${runId}_m14_${randomBytes(4).toString('hex')}`;
    await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
    const url = databaseUrl(adminUrl, name);
    // The migrations before 14, applied from a copy of the directory.
    const before = await mkdtemp(join(tmpdir(), 'tether-m13-'));
    const files = await migrationFiles();
    for (const file of files.filter((f) => parseInt(f, 10) < 14)) {
      await copyFile(join(MIGRATIONS_DIR, file), join(before, file));
    }
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await migrate({ client }, before, { logger: () => undefined });
      await client.query(
        `INSERT INTO fleet_events (type, node_id, payload) VALUES
           ('runtimenode.attached', 'n1', '{"attachmentId":"a","state":"registering","previousState":null,"readOnly":false,"nodeVersion":"1.4"}'),
           ('runtimenode.detached', 'n1', '{"nodeVersion":"kept"}')`,
      );
      expect((await runMigrations(url)).applied).toEqual(
        files.filter((f) => parseInt(f, 10) >= 14),
      );
      const { rows } = await client.query<{ type: string; payload: Record<string, unknown> }>(
        `SELECT type, payload FROM fleet_events ORDER BY id`,
      );
      expect(rows[0]!.payload).toEqual({
        attachmentId: 'a',
        state: 'registering',
        previousState: null,
        readOnly: false,
        nodeVersion: '1.4',
      });
      expect(rows[1]!.payload).toEqual({ nodeVersion: 'kept' });
      const columns = await client.query<{ c: string }>(
        `SELECT table_name || '.' || column_name AS c FROM information_schema.columns
          WHERE table_schema = 'public' AND column_name LIKE '%_version' ORDER BY 1`,
      );
      expect(columns.rows.map((r) => r.c)).toEqual([
        'nodes.node_version',
        'runtime_node_attachments.node_version',
        'sessions.min_node_version',
      ]);
    } finally {
      await client.end();
      await rm(before, { recursive: true, force: true });
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });
});

describe('schema: heartbeat-friendly presence table', () => {
  it('runtime_node_presence has fillfactor 70', async () => {
    const { rows } = await t.db.query<{ reloptions: string[] | null }>(
      `SELECT reloptions FROM pg_class WHERE oid = 'public.runtime_node_presence'::regclass`,
    );
    expect(rows[0]?.reloptions).toContain('fillfactor=70');
  });

  it('only the primary key indexes runtime_node_presence (beats and transitions touch no index)', async () => {
    const { rows } = await t.db.query<{ name: string; def: string }>(
      `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'public.runtime_node_presence'::regclass
        ORDER BY c.relname`,
    );
    // The query does see this table's indexes, so an empty answer would not pass vacuously.
    expect(rows.map((r) => r.name)).toEqual(['runtime_node_presence_pkey']);
    expect(rows[0]?.def).toMatch(/\(node_id\)$/);
  });

  it('a heartbeat and a presence transition are both HOT updates', async () => {
    const owner = await makeParticipant(t.db);
    const node = await makeNode(t.db, owner);
    // A beat (the timestamp changes) and a transition (the health changes), in one transaction.
    const counts = await t.db.tx((sql) =>
      updatesIn(sql, 'runtime_node_presence', async () => {
        await sql.query(
          `UPDATE runtime_node_presence SET last_heartbeat_at = now() WHERE node_id = $1`,
          [node.nodeId],
        );
        await sql.query(
          `UPDATE runtime_node_presence SET health_state = 'online', online_since = now(), changed_at = now()
            WHERE node_id = $1`,
          [node.nodeId],
        );
      }),
    );
    expect(counts).toEqual({ updated: 2, hot: 2 });
  });
});
