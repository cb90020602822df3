/**
 * Pairing service rules that the wire cannot force: pairing-code collisions (the code generator
 * is scripted here) and races on separate backend connections.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import type * as Tokens from '../../src/auth/tokens.js';
import { createDb } from '../../src/db/pool.js';
import { approveRequest, rejectRequest, requestPairing } from '../../src/pairing/service.js';
import { useTestDatabase } from '../db.js';
import { expectTetherError } from '../expect-error.js';
import { makeParticipant } from '../fixtures.js';

const scripted = vi.hoisted(() => ({ codes: [] as string[] }));

vi.mock('../../src/auth/tokens.js', async (importOriginal) => {
  const actual = await importOriginal<typeof Tokens>();
  return {
    ...actual,
    generatePairingCode: () => scripted.codes.shift() ?? actual.generatePairingCode(),
  };
});

const t = useTestDatabase();
const context = { requesterAddress: '192.0.2.7', ttlSeconds: 600 };
const input = (name = 'edge box') => ({ name, nodeType: 'daemon' });
const secret = () => randomBytes(32).toString('base64url');

describe('pairing codes', () => {
  it('a code colliding with a pending request is drawn again', async () => {
    scripted.codes.push('AAAA-2222', 'AAAA-2222', 'BBBB-3333');
    const first = await requestPairing(t.db, input('first'), context);
    const second = await requestPairing(t.db, input('second'), context);
    expect(first.pairingCode).toBe('AAAA-2222');
    expect(second.pairingCode).toBe('BBBB-3333');
    expect(scripted.codes).toEqual([]);
  });

  it('a code is unique only among pending requests: a decided request frees its code', async () => {
    const admin = await makeParticipant(t.db, 'admin');
    scripted.codes.push('CCCC-4444');
    const first = await requestPairing(t.db, input(), context);
    await rejectRequest(t.db, admin, { requestId: first.requestId });
    scripted.codes.push('CCCC-4444');
    const second = await requestPairing(t.db, input(), context);
    expect(second.pairingCode).toBe('CCCC-4444');
    expect(second.requestId).not.toBe(first.requestId);
  });

  it('when every draw collides the request fails as system.unavailable and writes nothing', async () => {
    scripted.codes.push('DDDD-5555');
    await requestPairing(t.db, input(), context);
    const before = await t.db.query(`SELECT 1 FROM pairing_requests`);
    scripted.codes.push(...Array<string>(8).fill('DDDD-5555'));
    await expectTetherError(requestPairing(t.db, input(), context), 'system.unavailable');
    expect(scripted.codes).toEqual([]);
    const after = await t.db.query(`SELECT 1 FROM pairing_requests`);
    expect(after.rows).toHaveLength(before.rows.length);
  });

  it('stores the requester address it was given', async () => {
    const requested = await requestPairing(t.db, input(), {
      ...context,
      requesterAddress: '198.51.100.9',
    });
    const { rows } = await t.db.query(
      `SELECT requester_address FROM pairing_requests WHERE id = $1`,
      [requested.requestId],
    );
    expect(rows).toEqual([{ requester_address: '198.51.100.9' }]);
  });
});

describe('pairing races on separate connections', () => {
  it('two first requests with the same claimSecret at once yield one row, both answered with it', async () => {
    const pools = [
      createDb({ connectionString: t.url, max: 1 }),
      createDb({ connectionString: t.url, max: 1 }),
    ];
    try {
      for (let round = 0; round < 10; round++) {
        const claimSecret = secret();
        const [a, b] = await Promise.all(
          pools.map((db, i) => requestPairing(db, { ...input(`twin ${i}`), claimSecret }, context)),
        );
        expect(a!.requestId).toBe(b!.requestId);
        expect(a!.pairingCode).toBe(b!.pairingCode);
        const { rows } = await t.db.query(`SELECT 1 FROM pairing_requests WHERE id = $1`, [
          a!.requestId,
        ]);
        expect(rows).toHaveLength(1);
      }
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }
  });

  it('approve and reject racing on one request: exactly one decides, the other → pairing.not_pending', async () => {
    const admin = await makeParticipant(t.db, 'admin');
    const member = await makeParticipant(t.db, 'member');
    const left = createDb({ connectionString: t.url, max: 1 });
    const right = createDb({ connectionString: t.url, max: 1 });
    try {
      for (let round = 0; round < 10; round++) {
        const requested = await requestPairing(t.db, input(), context);
        const outcomes = await Promise.allSettled([
          approveRequest(left, admin, { requestId: requested.requestId }),
          rejectRequest(right, member, { requestId: requested.requestId }),
        ]);
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0]!.reason).toMatchObject({ code: 'pairing.not_pending' });
        const { rows } = await t.db.query<{ state: string; node_id: string | null }>(
          `SELECT state, node_id FROM pairing_requests WHERE id = $1`,
          [requested.requestId],
        );
        expect(rows[0]!.state).toBe(won[0]!.value.state);
        expect(rows[0]!.node_id === null).toBe(rows[0]!.state === 'rejected');
      }
    } finally {
      await Promise.all([left.close(), right.close()]);
    }
  });
});
