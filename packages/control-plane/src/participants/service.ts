/**
 * Participants: people and service accounts. Tokens for them live in auth/.
 * Suspension (`disabled_at`) is reversible: while it is set every participant token of the
 * participant fails authentication (the lookup joins the participant), its live sockets and
 * streams end (a `participant_suspended` revocation, published after commit), and its enrollment
 * keys count as revoked. Resuming clears it: tokens that were not revoked or expired meanwhile
 * work again. The participant's nodes keep their own credentials and keep working.
 */
import type { ParticipantId, ParticipantRole } from '@tether/contracts';
import { ParticipantRole as RoleSchema, TetherError } from '@tether/contracts';
import { z } from 'zod';
import type { ParticipantPrincipal } from '../auth/principal.js';
import type { RevocationBus } from '../auth/revocations.js';
import type { Db, Sql } from '../db/pool.js';
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

/**
 * `participant.suspend` (admin): sets `disabled_at` (kept if already set) and ends every live
 * use of the participant's tokens on every replica. An admin cannot suspend themselves: nobody
 * might be left to resume them.
 */
export async function suspendParticipant(
  db: Db,
  actor: ParticipantPrincipal,
  participantId: string,
  revocations: RevocationBus,
): Promise<ParticipantView> {
  if (participantId === actor.participantId) {
    throw new TetherError(
      'participant.suspend_self',
      'A participant cannot suspend themselves; another admin must.',
    );
  }
  const { view, hashes } = await db.tx(async (sql) => {
    const { rows } = await sql.query(
      `UPDATE participants SET disabled_at = COALESCE(disabled_at, now()) WHERE id = $1
        RETURNING id, name, role, created_at, disabled_at`,
      [participantId],
    );
    if (!rows[0]) throw new TetherError('participant.not_found', 'No such participant.');
    const { rows: tokens } = await sql.query<{ token_hash: Buffer }>(
      `SELECT token_hash FROM api_tokens WHERE participant_id = $1 AND revoked_at IS NULL`,
      [participantId],
    );
    return { view: toView(rows[0]), hashes: tokens.map((t) => t.token_hash.toString('hex')) };
  });
  // The hashes drop cached answers; the participant id ends holds whatever token they used.
  revocations.publish({ credentialHashes: hashes, participantId, reason: 'participant_suspended' });
  return view;
}

/**
 * `participant.resume` (admin): clears `disabled_at`. Its tokens authenticate again within the
 * auth cache TTL (a replica may still hold the negative answer that long); live uses ended by the
 * suspension stay ended: clients reconnect.
 */
export async function resumeParticipant(db: Db, participantId: string): Promise<ParticipantView> {
  const { rows } = await db.query(
    `UPDATE participants SET disabled_at = NULL WHERE id = $1
      RETURNING id, name, role, created_at, disabled_at`,
    [participantId],
  );
  if (!rows[0]) throw new TetherError('participant.not_found', 'No such participant.');
  return toView(rows[0]);
}
