/**
 * Expiry: open commands past their deadline become `expired` (awaiting approval included), by
 * the database clock, with their events, in batches. Run by the maintenance loop's leader
 * (server/sweeper.ts); rows another transaction holds are skipped this round (SKIP LOCKED), so
 * it never waits on a delivery or a result, and two runs at once expire each row once.
 */
import type { Db } from '../db/pool.js';
import { feedWritten } from '../events/append.js';
import { OPEN_SQL, systemTransitionEventsSql } from './rows.js';

export interface ExpiredCommand {
  commandId: string;
  nodeId: string;
}

const BATCH = 1_000;

export async function expireCommands(db: Db, lockKey: string): Promise<ExpiredCommand[]> {
  const expired: ExpiredCommand[] = [];
  for (;;) {
    const batch = await db.tx(async (sql) => {
      const { rows: lock } = await sql.query<{ locked: boolean }>(
        `SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked`,
        [lockKey],
      );
      if (!lock[0]?.locked) return [];
      const { rows } = await sql.query<{ id: string; node_id: string }>(
        `WITH due AS (
           SELECT c.id, c.state AS from_state FROM node_commands c
            WHERE c.state IN ${OPEN_SQL} AND c.expires_at <= now()
            ORDER BY c.expires_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
         ), upd AS (
           UPDATE node_commands c
              SET state = 'expired', finished_at = now(), revision = c.revision + 1
             FROM due
            WHERE c.id = due.id
            RETURNING c.id, c.node_id, c.session_id, c.capability, c.attempts,
                      due.from_state, c.state AS to_state
         ), events AS (
           ${systemTransitionEventsSql('upd', 'sweep')}
         )
         SELECT id::text, node_id FROM upd`,
        [BATCH],
      );
      if (rows.length > 0) feedWritten(sql);
      return rows;
    });
    for (const r of batch) expired.push({ commandId: r.id, nodeId: r.node_id });
    if (batch.length < BATCH) return expired;
  }
}
