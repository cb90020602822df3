/**
 * Participant tokens: issuing (a token minted by a token never outlives its creator: its expiry
 * is capped at the creator's in the very statement that inserts it, which also refuses a creator
 * that ended), revoking (a token and, transitively, every token it created, in one transaction,
 * announced on the revocation bus), listing (metadata only: a token or its hash never leaves the
 * database), and the admins a server ensures at start (`TETHER_BOOTSTRAP_TOKEN`, the first admin).
 * Tokens are stored hashed (SHA-256) and never logged.
 */
import type { ParticipantId, ParticipantRole } from '@tether/contracts';
import { PARTICIPANT_TOKEN_PREFIX, TetherError } from '@tether/contracts';
import { z } from 'zod';
import { cursorTimestamp, decodeCursor, pageLimit, toPage } from '../db/pagination.js';
import type { Db, Sql } from '../db/pool.js';
import { parseRow } from '../db/rows.js';
import type { ParticipantPrincipal } from './principal.js';
import { isAdmin } from './principal.js';
import type { RevocationBus } from './revocations.js';
import { generateToken, hashToken } from './tokens.js';

export interface IssuedToken {
  tokenId: string;
  token: string;
  expiresAt: Date | null;
}

/** The creator token that ended between authentication and now: the call is unauthenticated. */
function creatorEnded(): TetherError {
  return new TetherError(
    'auth.unauthenticated',
    'The credential that made this call is no longer valid.',
  );
}

/**
 * A new token for `participantId`. With `creatorTokenId` (the token making the call) the new one
 * is its child: it records the creator, expires no later than it (an absent or longer
 * `expiresInSeconds` is capped; `expiresAt` in the answer is the real expiry), and is revoked
 * with it. The creator row is read FOR SHARE in the inserting statement: a concurrent revocation
 * of the creator either waits for this insert (and then revokes the child too, see
 * `revokeTokenTree`) or has committed first (and the insert is refused).
 */
export async function issueParticipantToken(
  sql: Sql,
  participantId: string,
  name: string,
  expiresInSeconds?: number,
  creatorTokenId?: string,
): Promise<IssuedToken> {
  const token = generateToken('tpt_');
  const { rows } = await sql.query<{ id: string; expires_at: Date | null }>(
    `WITH creator AS (
       SELECT t.id, t.expires_at FROM api_tokens t
        WHERE t.id = $5::uuid AND t.revoked_at IS NULL
          AND (t.expires_at IS NULL OR t.expires_at > now())
          FOR SHARE
     )
     INSERT INTO api_tokens (participant_id, token_hash, name, expires_at, created_by_token_id)
     SELECT $1, $2, $3,
            -- LEAST ignores NULLs: no expiry asked → the creator's; no creator expiry → the asked one.
            LEAST(CASE WHEN $4::int IS NULL THEN NULL ELSE now() + make_interval(secs => $4::int) END,
                  (SELECT expires_at FROM creator)),
            (SELECT id FROM creator)
      WHERE $5::uuid IS NULL OR EXISTS (SELECT 1 FROM creator)
     RETURNING id, expires_at`,
    [participantId, hashToken(token), name, expiresInSeconds ?? null, creatorTokenId ?? null],
  );
  const row = rows[0];
  if (!row) throw creatorEnded();
  return {
    tokenId: row.id,
    token,
    expiresAt: row.expires_at ?? null,
  };
}

/** `token.create`: a token for the caller, the child of the token making the call. */
export function createChildToken(
  db: Db,
  actor: ParticipantPrincipal,
  input: { name: string; expiresInSeconds?: number | undefined },
): Promise<IssuedToken> {
  return issueParticipantToken(
    db,
    actor.participantId,
    input.name,
    input.expiresInSeconds,
    actor.tokenId,
  );
}

/**
 * A participant and its first token. Created by an admin's token (`creatorTokenId`), the first
 * token expires no later than that token — a short-lived admin token cannot mint a permanent
 * account — but is not its child: the new participant is a separate account, not revoked when
 * the admin's token is (suspend it for that). From the CLI (no creator) it never expires.
 */
export async function createParticipantWithToken(
  db: Db,
  input: { name: string; role: ParticipantRole },
  creatorTokenId?: string,
): Promise<{
  participantId: ParticipantId;
  tokenId: string;
  token: string;
  expiresAt: Date | null;
}> {
  return db.tx(async (sql) => {
    let expiresAt: Date | null = null;
    if (creatorTokenId !== undefined) {
      const { rows: creator } = await sql.query<{ expires_at: Date | null }>(
        `SELECT expires_at FROM api_tokens
          WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
          FOR SHARE`,
        [creatorTokenId],
      );
      if (!creator[0]) throw creatorEnded();
      expiresAt = creator[0].expires_at;
    }
    const { rows } = await sql.query<{ id: string }>(
      `INSERT INTO participants (name, role) VALUES ($1, $2) RETURNING id`,
      [input.name, input.role],
    );
    const participantId = rows[0]!.id as ParticipantId;
    const token = generateToken('tpt_');
    const { rows: issued } = await sql.query<{ id: string; expires_at: Date | null }>(
      `INSERT INTO api_tokens (participant_id, token_hash, name, expires_at)
       VALUES ($1, $2, $3, $4) RETURNING id, expires_at`,
      [participantId, hashToken(token), `${input.name} (initial)`, expiresAt],
    );
    const row = issued[0]!;
    return {
      participantId,
      tokenId: row.id,
      token,
      expiresAt: row.expires_at,
    };
  });
}

/**
 * Revokes `tokenId` and, transitively, every token created from it, and the enrollment keys any
 * of them created; returns the hashes (hex) of the tokens below `tokenId` (already-revoked ones
 * included: harmless to publish). Level by level,
 * each level its own statement inside the caller's transaction: a statement waits for a
 * concurrent child insert that holds its parent FOR SHARE, and the next level's statement (a new
 * snapshot) then sees that child, so no token minted while the cascade runs escapes it.
 */
export async function revokeTokenTree(sql: Sql, tokenId: string): Promise<string[]> {
  const hashes: string[] = [];
  const tree = [tokenId];
  let frontier = [tokenId];
  while (frontier.length > 0) {
    const { rows } = await sql.query<{ id: string; token_hash: Buffer }>(
      `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now())
        WHERE created_by_token_id = ANY($1::uuid[])
        RETURNING id, token_hash`,
      [frontier],
    );
    for (const row of rows) hashes.push(row.token_hash.toString('hex'));
    frontier = rows.map((r) => r.id);
    tree.push(...frontier);
  }
  // The enrollment keys any of them created go too (after every level: a key inserted while a
  // level waited on its creator is visible to this later statement).
  await sql.query(
    `UPDATE enrollment_keys SET revoked_at = COALESCE(revoked_at, now())
      WHERE created_by_token_id = ANY($1::uuid[]) AND revoked_at IS NULL`,
    [tree],
  );
  return hashes;
}

/**
 * Revokes a participant token (its owner may revoke their own, an admin any) and every token
 * created from it, transitively; then publishes them all, so live sockets and streams on them
 * end at once on every replica.
 */
export async function revokeParticipantToken(
  db: Db,
  actor: ParticipantPrincipal,
  tokenId: string,
  revocations: RevocationBus,
): Promise<null> {
  const hashes = await db.tx(async (sql) => {
    const { rows } = await sql.query<{ token_hash: Buffer }>(
      `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now())
        WHERE id = $1 AND ($2::boolean OR participant_id = $3)
        RETURNING token_hash`,
      [tokenId, isAdmin(actor), actor.participantId],
    );
    if (!rows[0]) throw new TetherError('token.not_found', 'No such token.');
    return [rows[0].token_hash.toString('hex'), ...(await revokeTokenTree(sql, tokenId))];
  });
  revocations.publish({ credentialHashes: hashes, reason: 'token_revoked' });
  return null;
}

const TokenRow = z.object({
  id: z.string(),
  participant_id: z.string(),
  name: z.string(),
  created_at: z.date(),
  cursor_at: z.string(),
  last_used_at: z.date().nullable(),
  expires_at: z.date().nullable(),
  revoked_at: z.date().nullable(),
  created_by_token_id: z.string().nullable(),
});

export interface TokenView {
  tokenId: string;
  participantId: ParticipantId;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  createdByTokenId: string | null;
}

/**
 * `token.list`: the caller's tokens; an admin sees everyone's, or one participant's with
 * `participantId`. Metadata only — a token or its hash never leaves the database. Oldest first,
 * keyset-paged on (created_at, id) at full precision (db/pagination.ts).
 */
export async function listTokens(
  db: Sql,
  actor: ParticipantPrincipal,
  input: {
    participantId?: string | undefined;
    cursor?: string | undefined;
    limit?: number | undefined;
  },
): Promise<{ items: TokenView[]; nextCursor: string | null }> {
  if (
    !isAdmin(actor) &&
    input.participantId !== undefined &&
    input.participantId !== actor.participantId
  ) {
    throw new TetherError('auth.forbidden', "Only an admin may list another participant's tokens.");
  }
  const owner = isAdmin(actor) ? (input.participantId ?? null) : actor.participantId;
  const limit = pageLimit(input.limit);
  const after = decodeCursor('token', input.cursor);
  const { rows } = await db.query(
    `SELECT id, participant_id, name, created_at, ${cursorTimestamp('created_at')} AS cursor_at,
            last_used_at, expires_at, revoked_at, created_by_token_id
       FROM api_tokens
      WHERE ($1::uuid IS NULL OR participant_id = $1::uuid)
        AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
      ORDER BY created_at, id LIMIT $4`,
    [owner, after?.[0] ?? null, after?.[1] ?? null, limit + 1],
  );
  const parsed = rows.map((r) => parseRow(TokenRow, r, 'token'));
  return toPage(
    parsed,
    limit,
    (r) => ({
      tokenId: r.id,
      participantId: r.participant_id as ParticipantId,
      name: r.name,
      createdAt: r.created_at,
      lastUsedAt: r.last_used_at,
      expiresAt: r.expires_at,
      revokedAt: r.revoked_at,
      createdByTokenId: r.created_by_token_id,
    }),
    'token',
    (r) => [r.cursor_at, r.id],
  );
}

/**
 * `TETHER_BOOTSTRAP_TOKEN`: ensure an admin participant holds exactly this token (valid, not
 * revoked, no expiry). Serialised by an advisory lock so concurrent replicas create it once.
 */
export async function ensureBootstrapAdmin(
  db: Db,
  token: string,
): Promise<{ participantId: string; created: boolean }> {
  if (!token.startsWith(PARTICIPANT_TOKEN_PREFIX)) {
    throw new Error(
      `TETHER_BOOTSTRAP_TOKEN must start with "${PARTICIPANT_TOKEN_PREFIX}" (a participant token)`,
    );
  }
  const hash = hashToken(token);
  return db.tx(async (sql) => {
    await sql.query(`SELECT pg_advisory_xact_lock(hashtext('tether.bootstrap_admin'))`);
    const { rows } = await sql.query<{ participant_id: string }>(
      `SELECT participant_id FROM api_tokens WHERE token_hash = $1`,
      [hash],
    );
    if (rows[0]) {
      await sql.query(
        `UPDATE api_tokens SET revoked_at = NULL, expires_at = NULL, created_by_token_id = NULL
          WHERE token_hash = $1`,
        [hash],
      );
      await sql.query(`UPDATE participants SET role = 'admin', disabled_at = NULL WHERE id = $1`, [
        rows[0].participant_id,
      ]);
      return { participantId: rows[0].participant_id, created: false };
    }
    const { rows: created } = await sql.query<{ id: string }>(
      `INSERT INTO participants (name, role) VALUES ('bootstrap admin', 'admin') RETURNING id`,
    );
    const participantId = created[0]!.id;
    await sql.query(
      `INSERT INTO api_tokens (participant_id, token_hash, name) VALUES ($1, $2, 'bootstrap')`,
      [participantId, hash],
    );
    return { participantId, created: true };
  });
}

/** The participant a fresh server creates when nobody can sign in (see ensureFirstAdmin). */
export const FIRST_ADMIN_NAME = 'admin';

/**
 * First start: when no active admin participant exists, create one (`admin`) with a token and
 * hand the token to `deliver` (the server writes it to a file) before the transaction commits,
 * so a token that could not be delivered never exists. Serialised by an advisory lock, so
 * replicas starting together create one admin. Returns null when an active admin existed.
 */
export async function ensureFirstAdmin(
  db: Db,
  deliver: (token: string) => Promise<void>,
): Promise<{ participantId: ParticipantId; tokenId: string } | null> {
  return db.tx(async (sql) => {
    await sql.query(`SELECT pg_advisory_xact_lock(hashtext('tether.first_admin'))`);
    const { rows: admins } = await sql.query(
      `SELECT 1 FROM participants WHERE role = 'admin' AND disabled_at IS NULL LIMIT 1`,
    );
    if (admins.length > 0) return null;
    const { rows } = await sql.query<{ id: string }>(
      `INSERT INTO participants (name, role) VALUES ($1, 'admin') RETURNING id`,
      [FIRST_ADMIN_NAME],
    );
    const participantId = rows[0]!.id as ParticipantId;
    const token = generateToken('tpt_');
    const { rows: issued } = await sql.query<{ id: string }>(
      `INSERT INTO api_tokens (participant_id, token_hash, name) VALUES ($1, $2, $3) RETURNING id`,
      [participantId, hashToken(token), 'first admin (written to first-admin-token)'],
    );
    await deliver(token);
    return { participantId, tokenId: issued[0]!.id };
  });
}
