/** Participants: people and service accounts. Tokens for them live in auth/. */
import type { ParticipantId, ParticipantRole } from '@tether/contracts';
import { ParticipantRole as RoleSchema } from '@tether/contracts';
import { z } from 'zod';
import type { Sql } from '../db/pool.js';
import { cursorTimestamp, decodeCursor, pageLimit, toPage } from '../db/pagination.js';
import { parseRow } from '../db/rows.js';

const ParticipantRow = z.object({
  id: z.string(),
  name: z.string(),
  role: RoleSchema,
  created_at: z.date(),
  disabled_at: z.date().nullable(),
});

export interface ParticipantView {
  participantId: ParticipantId;
  name: string;
  role: ParticipantRole;
  createdAt: Date;
  disabledAt: Date | null;
}

function toView(row: unknown): ParticipantView {
  const r = parseRow(ParticipantRow, row, 'participant');
  return {
    participantId: r.id as ParticipantId,
    name: r.name,
    role: r.role,
    createdAt: r.created_at,
    disabledAt: r.disabled_at,
  };
}

export async function createParticipant(
  sql: Sql,
  input: { name: string; role: ParticipantRole },
): Promise<ParticipantView> {
  const { rows } = await sql.query(
    `INSERT INTO participants (name, role) VALUES ($1, $2) RETURNING id, name, role, created_at, disabled_at`,
    [input.name, input.role],
  );
  return toView(rows[0]);
}

export async function getParticipant(
  sql: Sql,
  participantId: string,
): Promise<ParticipantView | null> {
  const { rows } = await sql.query(
    `SELECT id, name, role, created_at, disabled_at FROM participants WHERE id = $1`,
    [participantId],
  );
  return rows[0] ? toView(rows[0]) : null;
}

export async function listParticipants(
  sql: Sql,
  input: { cursor?: string | undefined; limit?: number | undefined },
): Promise<{ items: ParticipantView[]; nextCursor: string | null }> {
  const limit = pageLimit(input.limit);
  const after = decodeCursor('participant', input.cursor);
  const { rows } = await sql.query<{ id: string; cursor_at: string }>(
    `SELECT id, name, role, created_at, disabled_at, ${cursorTimestamp('created_at')} AS cursor_at
       FROM participants
      WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1::timestamptz, $2::uuid))
      ORDER BY created_at, id LIMIT $3`,
    [after?.[0] ?? null, after?.[1] ?? null, limit + 1],
  );
  return toPage(rows, limit, toView, 'participant', (r) => [r.cursor_at, r.id]);
}
