/**
 * Credential → principal. Tokens are looked up by SHA-256 (unique index); an in-process cache
 * keeps hot credentials off the database for at most `cacheTtlMs`, and revocations made on this
 * replica invalidate it immediately, so a revoked token stops working within the TTL everywhere.
 * Tokens are never logged and never leave this module except as hashes.
 */
import type { ParticipantId, ParticipantRole, NodeId } from '@tether/contracts';
import { NODE_TOKEN_PREFIX, PARTICIPANT_TOKEN_PREFIX, TetherError } from '@tether/contracts';
import { prepared, type Db, type Sql } from '../db/pool.js';
import type { NodePrincipal, ParticipantPrincipal, Principal } from './principal.js';
import { isAdmin } from './principal.js';
import type { RevocationBus } from './revocations.js';
import { generateToken, hashToken } from './tokens.js';

interface CacheEntry {
  principal: Principal | null;
  expiresAt: number;
}

const CACHE_MAX_ENTRIES = 100_000;
const LAST_USED_RESOLUTION = '60 seconds';

// Every connect and every cache miss runs one of these: prepared once per pooled connection.
const LOOKUP_NODE = prepared(
  'tether_lookup_node',
  `SELECT n.node_id, n.owner_participant_id
     FROM nodes n JOIN participants p ON p.id = n.owner_participant_id
    WHERE n.token_hash = $1 AND n.status = 'active' AND p.disabled_at IS NULL`,
);
const LOOKUP_PARTICIPANT = prepared(
  'tether_lookup_participant',
  `SELECT t.id, t.participant_id, p.role
     FROM api_tokens t JOIN participants p ON p.id = t.participant_id
    WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
      AND p.disabled_at IS NULL`,
);

export interface AuthServiceOptions {
  cacheTtlMs: number;
  revocations: RevocationBus;
}

export class AuthService {
  readonly #db: Db;
  readonly #ttl: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly revocations: RevocationBus;

  constructor(db: Db, options: AuthServiceOptions) {
    this.#db = db;
    this.#ttl = options.cacheTtlMs;
    this.revocations = options.revocations;
    this.revocations.subscribe((r) => {
      for (const hash of r.credentialHashes) this.#cache.delete(hash);
    });
  }

  /** The principal for a bearer token, or null when it is unknown, expired or revoked. */
  async authenticate(token: string): Promise<Principal | null> {
    if (!token.startsWith(PARTICIPANT_TOKEN_PREFIX) && !token.startsWith(NODE_TOKEN_PREFIX))
      return null;
    const hash = hashToken(token);
    const key = hash.toString('hex');
    const now = Date.now();
    const cached = this.#cache.get(key);
    if (cached && cached.expiresAt > now) return cached.principal;

    const principal = token.startsWith(NODE_TOKEN_PREFIX)
      ? await this.#lookupNode(hash, key)
      : await this.#lookupParticipant(hash, key);
    if (this.#cache.size >= CACHE_MAX_ENTRIES) this.#cache.clear();
    this.#cache.set(key, { principal, expiresAt: now + this.#ttl });
    return principal;
  }

  async #lookupNode(hash: Buffer, key: string): Promise<NodePrincipal | null> {
    const { rows } = await this.#db.query<{ node_id: string; owner_participant_id: string }>(
      LOOKUP_NODE,
      [hash],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      kind: 'node',
      nodeId: row.node_id as NodeId,
      ownerParticipantId: row.owner_participant_id as ParticipantId,
      credentialHash: key,
    };
  }

  async #lookupParticipant(hash: Buffer, key: string): Promise<ParticipantPrincipal | null> {
    const { rows } = await this.#db.query<{
      id: string;
      participant_id: string;
      role: ParticipantRole;
    }>(LOOKUP_PARTICIPANT, [hash]);
    const row = rows[0];
    if (!row) return null;
    // Throttled: at most one write per token per minute, never on the hot path's critical section.
    void this.#db
      .query(
        `UPDATE api_tokens SET last_used_at = now()
          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '${LAST_USED_RESOLUTION}')`,
        [row.id],
      )
      .catch(() => undefined);
    return {
      kind: 'participant',
      participantId: row.participant_id as ParticipantId,
      role: row.role,
      tokenId: row.id,
      credentialHash: key,
    };
  }

  /** Drops cached answers for these credential hashes (hex), e.g. found invalid by revalidation. */
  forget(hashes: Iterable<string>): void {
    for (const hash of hashes) this.#cache.delete(hash);
  }

  /** Of the given credential hashes (hex), those still valid — one round trip for many sockets. */
  async stillValid(hashes: string[]): Promise<Set<string>> {
    if (hashes.length === 0) return new Set();
    const buffers = hashes.map((h) => Buffer.from(h, 'hex'));
    const { rows } = await this.#db.query<{ h: Buffer }>(
      `SELECT n.token_hash AS h FROM nodes n JOIN participants p ON p.id = n.owner_participant_id
        WHERE n.token_hash = ANY($1) AND n.status = 'active' AND p.disabled_at IS NULL
       UNION ALL
       SELECT t.token_hash FROM api_tokens t JOIN participants p ON p.id = t.participant_id
        WHERE t.token_hash = ANY($1) AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
          AND p.disabled_at IS NULL`,
      [buffers],
    );
    return new Set(rows.map((r) => r.h.toString('hex')));
  }
}

export interface IssuedToken {
  tokenId: string;
  token: string;
  expiresAt: Date | null;
}

export async function issueParticipantToken(
  sql: Sql,
  participantId: string,
  name: string,
  expiresInSeconds?: number,
): Promise<IssuedToken> {
  const token = generateToken('tpt_');
  const { rows } = await sql.query<{ id: string; expires_at: Date | null }>(
    `INSERT INTO api_tokens (participant_id, token_hash, name, expires_at)
     VALUES ($1, $2, $3, CASE WHEN $4::int IS NULL THEN NULL ELSE now() + make_interval(secs => $4::int) END)
     RETURNING id, expires_at`,
    [participantId, hashToken(token), name, expiresInSeconds ?? null],
  );
  const row = rows[0]!;
  return {
    tokenId: row.id,
    token,
    expiresAt: row.expires_at ?? null,
  };
}

export async function createParticipantWithToken(
  db: Db,
  input: { name: string; role: ParticipantRole },
): Promise<{ participantId: ParticipantId; tokenId: string; token: string }> {
  return db.tx(async (sql) => {
    const { rows } = await sql.query<{ id: string }>(
      `INSERT INTO participants (name, role) VALUES ($1, $2) RETURNING id`,
      [input.name, input.role],
    );
    const participantId = rows[0]!.id as ParticipantId;
    const issued = await issueParticipantToken(sql, participantId, `${input.name} (initial)`);
    return { participantId, tokenId: issued.tokenId, token: issued.token };
  });
}

/** Revokes a participant token: its owner may revoke their own, an admin any. */
export async function revokeParticipantToken(
  db: Db,
  actor: ParticipantPrincipal,
  tokenId: string,
  revocations: RevocationBus,
): Promise<null> {
  const { rows } = await db.query<{ token_hash: Buffer }>(
    `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now())
      WHERE id = $1 AND ($2::boolean OR participant_id = $3)
      RETURNING token_hash`,
    [tokenId, isAdmin(actor), actor.participantId],
  );
  if (!rows[0]) throw new TetherError('token.not_found', 'No such token.');
  revocations.publish({
    credentialHashes: [rows[0].token_hash.toString('hex')],
    reason: 'token_revoked',
  });
  return null;
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
        `UPDATE api_tokens SET revoked_at = NULL, expires_at = NULL WHERE token_hash = $1`,
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
