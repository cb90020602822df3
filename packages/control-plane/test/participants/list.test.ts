/**
 * `participant.list` at the service: every participant once, in creation order (ties by id),
 * page by page until `nextCursor` is null; suspended participants listed with `disabledAt`;
 * a cursor this list did not issue is a typed request.invalid.
 */
import { describe, expect, it } from 'vitest';
import { RevocationBus } from '../../src/auth/revocations.js';
import { encodeCursor } from '../../src/db/pagination.js';
import { listParticipants, suspendParticipant } from '../../src/participants/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import { makeParticipant } from '../fixtures.js';

const t = useTestDatabase();

async function allIdsInOrder(): Promise<string[]> {
  const { rows } = await t.db.query<{ id: string }>(
    `SELECT id FROM participants ORDER BY created_at, id`,
  );
  return rows.map((r) => r.id);
}

describe('listParticipants', () => {
  it('pages every participant once, in creation order, at any limit; the last page has no cursor', async () => {
    const admin = await makeParticipant(t.db, 'admin');
    for (let i = 0; i < 4; i++) await makeParticipant(t.db);
    // Two more with the same creation time: the id breaks the tie.
    const { rows } = await t.db.query<{ created_at: Date }>(
      `SELECT created_at FROM participants WHERE id = $1`,
      [admin.participantId],
    );
    const twins = [await makeParticipant(t.db), await makeParticipant(t.db)];
    await t.db.query(`UPDATE participants SET created_at = $1 WHERE id = ANY($2::uuid[])`, [
      rows[0]!.created_at,
      twins.map((p) => p.participantId),
    ]);
    const expected = await allIdsInOrder();
    expect(expected.length).toBeGreaterThanOrEqual(7);

    for (const limit of [1, 2, 3, expected.length, expected.length + 1]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; ; pages++) {
        expect(pages, `limit ${limit}: too many pages`).toBeLessThanOrEqual(expected.length);
        const page = await listParticipants(t.db, { limit, ...(cursor ? { cursor } : {}) });
        expect(page.items.length).toBeLessThanOrEqual(limit);
        seen.push(...page.items.map((p) => p.participantId));
        if (page.nextCursor === null) break;
        cursor = page.nextCursor;
      }
      expect(seen, `limit ${limit}`).toEqual(expected);
    }
  });

  it('lists suspended participants with disabledAt, and everyone else without', async () => {
    const admin = await makeParticipant(t.db, 'admin');
    const member = await makeParticipant(t.db);
    const suspended = await makeParticipant(t.db);
    await suspendParticipant(t.db, admin, suspended.participantId, new RevocationBus());
    const { items } = await listParticipants(t.db, { limit: 500 });
    const byId = new Map(items.map((p) => [p.participantId, p]));
    expect(byId.get(suspended.participantId)).toMatchObject({ role: 'member' });
    expect(byId.get(suspended.participantId)!.disabledAt).toBeInstanceOf(Date);
    expect(byId.get(member.participantId)).toMatchObject({ role: 'member', disabledAt: null });
    expect(byId.get(admin.participantId)).toMatchObject({ role: 'admin', disabledAt: null });
    expect(byId.get(admin.participantId)!.createdAt).toBeInstanceOf(Date);
  });

  it('a cursor of another list, or not a cursor at all, is request.invalid', async () => {
    const other = encodeCursor('session', ['2030-01-01T00:00:00.000000Z', crypto.randomUUID()]);
    for (const cursor of [
      other,
      'not-a-cursor',
      Buffer.from('{"l":"participant"}').toString('base64url'),
    ]) {
      const error = await expectTetherError(listParticipants(t.db, { cursor }), 'request.invalid');
      expect(error.details).toEqual({ field: 'cursor' });
    }
  });
});
