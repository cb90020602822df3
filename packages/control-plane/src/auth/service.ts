/**
 * Credential → principal. Tokens are looked up by SHA-256 (unique index); an in-process cache
 * keeps hot credentials off the database for at most `cacheTtlMs`, and revocations made on this
 * replica invalidate it immediately, so a revoked token stops working within the TTL everywhere.
 * Tokens are never logged and never leave this module except as hashes. Issuing, revoking and
 * listing participant tokens is participant-tokens.ts.
 *
 * Lifetimes. A participant token is valid while it is not revoked, not expired and its
 * participant is not suspended (`disabled_at`). A token minted by a token (`token.create`)
 * records its creator and never outlives it: its expiry is capped at the creator's, in the very
 * statement that inserts it (which also refuses a creator that ended), and revoking a token
 * revokes every token it created, transitively, in one transaction (participant-tokens.ts). A
 * node token is valid while
 * its node is active, whatever its owner's suspension: devices keep running while the person is
 * suspended (docs/operations.md, "Credentials and their lifetimes").
 */
import type { ParticipantId, ParticipantRole, NodeId } from '@tether/contracts';
import { NODE_TOKEN_PREFIX, PARTICIPANT_TOKEN_PREFIX } from '@tether/contracts';
import { prepared, type Db } from '../db/pool.js';
import type { NodePrincipal, ParticipantPrincipal, Principal } from './principal.js';
import type { RevocationBus } from './revocations.js';
import { hashToken } from './tokens.js';

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
     FROM nodes n
    WHERE n.token_hash = $1 AND n.status = 'active'`,
);
const LOOKUP_PARTICIPANT = prepared(
  'tether_lookup_participant',
  `SELECT t.id, t.participant_id, p.role
     FROM api_tokens t JOIN participants p ON p.id = t.participant_id
    WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
      AND p.disabled_at IS NULL`,
);

/** Both lookups for many hashes at once (the upgrades of one event-loop turn). */
const LOOKUP_MANY = prepared(
  'tether_lookup_many',
  `SELECT n.token_hash AS h, n.node_id, n.owner_participant_id,
          NULL::uuid AS token_id, NULL::uuid AS participant_id, NULL::text AS role
     FROM nodes n
    WHERE n.token_hash = ANY($1) AND n.status = 'active'
   UNION ALL
   SELECT t.token_hash, NULL, NULL, t.id, t.participant_id, p.role
     FROM api_tokens t JOIN participants p ON p.id = t.participant_id
    WHERE t.token_hash = ANY($1) AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
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

  /**
   * `authenticate` for many tokens at once (the WebSocket upgrades of one event-loop turn): cached
   * answers first, then one statement for every miss, whatever its kind. Same answers, same cache.
   */
  async authenticateMany(tokens: readonly string[]): Promise<(Principal | null)[]> {
    const now = Date.now();
    const answers: (Principal | null | undefined)[] = tokens.map(() => undefined);
    const misses = new Map<string, number[]>();
    tokens.forEach((token, i) => {
      if (!token.startsWith(PARTICIPANT_TOKEN_PREFIX) && !token.startsWith(NODE_TOKEN_PREFIX)) {
        answers[i] = null;
        return;
      }
      const key = hashToken(token).toString('hex');
      const cached = this.#cache.get(key);
      if (cached && cached.expiresAt > now) {
        answers[i] = cached.principal;
        return;
      }
      const at = misses.get(key);
      if (at) at.push(i);
      else misses.set(key, [i]);
    });
    if (misses.size > 0) {
      const { rows } = await this.#db.query<{
        h: Buffer;
        node_id: string | null;
        owner_participant_id: string | null;
        token_id: string | null;
        participant_id: string | null;
        role: ParticipantRole | null;
      }>(LOOKUP_MANY, [[...misses.keys()].map((k) => Buffer.from(k, 'hex'))]);
      const found = new Map<string, Principal>();
      for (const row of rows) {
        const key = row.h.toString('hex');
        if (row.node_id !== null) {
          found.set(key, {
            kind: 'node',
            nodeId: row.node_id as NodeId,
            ownerParticipantId: row.owner_participant_id as ParticipantId,
            credentialHash: key,
          });
        } else {
          found.set(key, {
            kind: 'participant',
            participantId: row.participant_id as ParticipantId,
            role: row.role!,
            tokenId: row.token_id!,
            credentialHash: key,
          });
          this.#touch(row.token_id!);
        }
      }
      if (this.#cache.size + misses.size >= CACHE_MAX_ENTRIES) this.#cache.clear();
      for (const [key, indexes] of misses) {
        const principal = found.get(key) ?? null;
        this.#cache.set(key, { principal, expiresAt: now + this.#ttl });
        for (const i of indexes) answers[i] = principal;
      }
    }
    return answers.map((a) => a ?? null);
  }

  /** Throttled: at most one write per token per minute, never on the hot path's critical section. */
  #touch(tokenId: string): void {
    void this.#db
      .query(
        `UPDATE api_tokens SET last_used_at = now()
          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '${LAST_USED_RESOLUTION}')`,
        [tokenId],
      )
      .catch(() => undefined);
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
    this.#touch(row.id);
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
      `SELECT n.token_hash AS h FROM nodes n
        WHERE n.token_hash = ANY($1) AND n.status = 'active'
       UNION ALL
       SELECT t.token_hash FROM api_tokens t JOIN participants p ON p.id = t.participant_id
        WHERE t.token_hash = ANY($1) AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
          AND p.disabled_at IS NULL`,
      [buffers],
    );
    return new Set(rows.map((r) => r.h.toString('hex')));
  }
}
