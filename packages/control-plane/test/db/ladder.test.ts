/**
 * The test database ladder: which PostgreSQL the suite runs against. The container rung needs a
 * Docker engine; where none answers, asking for it must fail in one clear line, never hang or
 * fall back silently to another server.
 */
import { describe, expect, it } from 'vitest';
import { startContainerPostgres, testPgRung } from '../postgres.js';

describe('test PostgreSQL ladder', () => {
  it('TETHER_TEST_PG picks a container image; else DATABASE_URL; else embedded', () => {
    expect(
      testPgRung({ TETHER_TEST_PG: 'container:postgres:14', DATABASE_URL: 'postgres://x' }),
    ).toEqual({
      kind: 'container',
      image: 'postgres:14',
    });
    expect(testPgRung({ DATABASE_URL: 'postgres://x' })).toEqual({
      kind: 'url',
      url: 'postgres://x',
    });
    expect(testPgRung({})).toEqual({ kind: 'embedded' });
    expect(() => testPgRung({ TETHER_TEST_PG: 'postgres:14' })).toThrow(/container:<image>/);
  });

  it('the container rung starts PostgreSQL where a Docker engine exists, and says so in one line where none does', async () => {
    let started: Awaited<ReturnType<typeof startContainerPostgres>> | undefined;
    let failure: Error | undefined;
    try {
      started = await startContainerPostgres('postgres:14-alpine');
    } catch (error) {
      failure = error as Error;
    }
    if (started) {
      // An engine answered: the container is a real PostgreSQL 14.
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: started.adminUrl });
      await client.connect();
      const { rows } = await client.query<{ v: string }>('SHOW server_version_num');
      await client.end();
      await started.stop();
      expect(Number(rows[0]!.v)).toBeGreaterThanOrEqual(140000);
    } else {
      expect(failure?.message).toMatch(
        /^TETHER_TEST_PG=container:postgres:14-alpine: no container/,
      );
      expect(failure?.message).toContain('Docker engine');
      expect(failure?.message.split('\n')).toHaveLength(1);
    }
  }, 120_000);
});
