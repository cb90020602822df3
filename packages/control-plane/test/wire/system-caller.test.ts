/** `system.info`'s `caller`: who the credential belongs to; a bad one is null, not an error. */
import { describe, expect, it } from 'vitest';
import { errorCode, mutate, query } from '../http.js';
import { startTestServer } from '../server.js';
import { nodeOf, participant } from './actors.js';

describe('system.info caller', () => {
  it('names the participant or node behind a valid token and is null for none, a wrong or a revoked one', async () => {
    await using server = await startTestServer();
    const member = await participant(server);
    const node = await nodeOf(server, member);
    const caller = async (token?: string) => {
      const res = await query<{ caller: unknown }>(
        server.url,
        'system.info',
        undefined,
        token === undefined ? {} : { token },
      );
      expect(res.status).toBe(200);
      return res.data.caller;
    };
    expect(await caller()).toBeNull();
    expect(await caller('tpt_not-a-token-anyone-has')).toBeNull();
    expect(await caller(member.token)).toEqual({
      kind: 'participant',
      participantId: member.participantId,
      role: 'member',
    });
    expect(await caller(node.token)).toEqual({ kind: 'node', nodeId: node.nodeId });
    expect(
      (await mutate(server.url, 'node.revoke', { nodeId: node.nodeId }, { token: member.token }))
        .status,
    ).toBe(200);
    expect(await caller(node.token)).toBeNull();
  });

  it('a wrong token costs the address a failure: past the budget, rate_limited (no silent guessing)', async () => {
    await using server = await startTestServer({
      env: { TETHER_RATE_AUTH_FAILURES_PER_MINUTE: '3' },
    });
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < 5; i++) {
      codes.push(
        errorCode(
          await query(server.url, 'system.info', undefined, { token: `tpt_guess-${i}-xxxx` }),
        ),
      );
    }
    expect(codes.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    expect(codes.slice(3)).toEqual(['rate_limited', 'rate_limited']);
    // Without a token it stays public.
    expect((await query(server.url, 'system.info')).status).toBe(200);
  });
});
