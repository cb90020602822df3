/**
 * Token lineage under concurrency, on real PostgreSQL: a child token minted while its creator is
 * being revoked never escapes the revocation cascade, whichever of the two takes the creator's
 * row first.
 */
import { describe, expect, it } from 'vitest';
import type { ParticipantPrincipal } from '../../src/auth/principal.js';
import { RevocationBus, type Revocation } from '../../src/auth/revocations.js';
import {
  issueParticipantToken,
  revokeParticipantToken,
  type IssuedToken,
} from '../../src/auth/participant-tokens.js';
import { hashToken } from '../../src/auth/tokens.js';
import { useTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { expectTetherError } from '../expect-error.js';
import { makeParticipant } from '../fixtures.js';

const t = useTestDatabase();

/** Statements of this database waiting for a row lock right now. */
async function lockWaiters(): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return rows[0]!.n;
}

function gate(): { open: () => void; opened: Promise<void> } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

async function revokedAt(tokenId: string): Promise<Date | null> {
  const { rows } = await t.db.query<{ revoked_at: Date | null }>(
    `SELECT revoked_at FROM api_tokens WHERE id = $1`,
    [tokenId],
  );
  return rows[0]!.revoked_at;
}

async function family(owner: ParticipantPrincipal) {
  const root = await issueParticipantToken(t.db, owner.participantId, 'root');
  const parent = await issueParticipantToken(
    t.db,
    owner.participantId,
    'parent',
    undefined,
    root.tokenId,
  );
  return { root, parent };
}

describe('token lineage: the revocation cascade and concurrent minting', () => {
  it('a child inserted (not yet committed) while its grandparent is revoked is revoked too', async () => {
    const owner = await makeParticipant(t.db);
    const { root, parent } = await family(owner);
    const held = gate();
    let child: IssuedToken | undefined;
    const minting = t.db.tx(async (sql) => {
      child = await issueParticipantToken(
        sql,
        owner.participantId,
        'late',
        undefined,
        parent.tokenId,
      );
      await held.opened;
    });
    await eventually(
      () => Promise.resolve(child),
      (c) => c !== undefined,
    );
    const published: Revocation[] = [];
    const bus = new RevocationBus();
    bus.subscribe((r) => published.push(r));
    const revoking = revokeParticipantToken(t.db, owner, root.tokenId, bus);
    // The cascade reaches the parent and waits for the insert holding it.
    await eventually(lockWaiters, (n) => n >= 1);
    held.open();
    await minting;
    await revoking;
    for (const token of [root, parent, child!])
      expect(await revokedAt(token.tokenId)).not.toBeNull();
    expect(published[0]!.credentialHashes).toContain(hashToken(child!.token).toString('hex'));
  });

  it('a child minted after its creator was revoked (not yet committed) is refused', async () => {
    const owner = await makeParticipant(t.db);
    const { parent } = await family(owner);
    const held = gate();
    let locked = false;
    const revoking = t.db.tx(async (sql) => {
      await sql.query(`UPDATE api_tokens SET revoked_at = now() WHERE id = $1`, [parent.tokenId]);
      locked = true;
      await held.opened;
    });
    await eventually(
      () => Promise.resolve(locked),
      (l) => l,
    );
    const minting = issueParticipantToken(
      t.db,
      owner.participantId,
      'late',
      undefined,
      parent.tokenId,
    );
    await eventually(lockWaiters, (n) => n >= 1);
    held.open();
    await revoking;
    await expectTetherError(minting, 'auth.unauthenticated');
    const { rows } = await t.db.query(`SELECT 1 FROM api_tokens WHERE created_by_token_id = $1`, [
      parent.tokenId,
    ]);
    expect(rows).toHaveLength(0);
  });
});
