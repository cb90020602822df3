/**
 * `participant.list` through the wire, over tRPC and REST (`GET /api/v1/participants`): admins
 * page through every participant; members and anonymous callers are refused with their typed
 * errors; bad limits and cursors are typed 400s.
 */
import { describe, expect, it } from 'vitest';
import { errorCode, query } from '../http.js';
import { rest } from '../rest.js';
import { startTestServer, type TestServer } from '../server.js';
import { participant } from './actors.js';

interface Page {
  items: { participantId: string; role: string; disabledAt: unknown }[];
  nextCursor: string | null;
}

type Surface = 'trpc' | 'rest';

/** One `participant.list` call: status, page (on success) and Tether error code (on failure). */
async function list(
  surface: Surface,
  server: TestServer,
  token: string | undefined,
  input: { limit?: number; cursor?: string } = {},
): Promise<{ status: number; page: Page; code: string | undefined }> {
  if (surface === 'trpc') {
    const r = await query<Page>(server.url, 'participant.list', input, { token });
    return { status: r.status, page: r.data, code: errorCode(r) };
  }
  const r = await rest<Page>(server.url, 'GET', '/participants', undefined, {
    token,
    query: input,
  });
  return { status: r.status, page: r.body, code: r.error?.code };
}

describe('participant.list over the wire', () => {
  for (const surface of ['trpc', 'rest'] as const) {
    it(`${surface}: an admin pages through every participant once, in creation order`, async () => {
      await using server = await startTestServer();
      const created = [await participant(server, 'admin'), await participant(server)];
      for (let i = 0; i < 3; i++) created.push(await participant(server));
      const { rows } = await server.db.query<{ id: string }>(
        `SELECT id FROM participants ORDER BY created_at, id`,
      );
      const expected = rows.map((r) => r.id);
      expect(expected).toEqual(expect.arrayContaining(created.map((p) => p.participantId)));

      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; ; pages++) {
        expect(pages).toBeLessThanOrEqual(expected.length);
        const r = await list(surface, server, server.adminToken, {
          limit: 2,
          ...(cursor ? { cursor } : {}),
        });
        expect(r.status).toBe(200);
        expect(r.page.items.length).toBeLessThanOrEqual(2);
        seen.push(...r.page.items.map((p) => p.participantId));
        if (r.page.nextCursor === null) break;
        cursor = r.page.nextCursor;
      }
      expect(seen).toEqual(expected);
    });

    it(`${surface}: members get auth.forbidden, no token auth.unauthenticated; bad limits and cursors are request.invalid`, async () => {
      await using server = await startTestServer();
      const member = await participant(server);
      const refusals = [
        await list(surface, server, member.token),
        await list(surface, server, undefined),
        await list(surface, server, server.adminToken, { limit: 0 }),
        await list(surface, server, server.adminToken, { limit: 100_000 }),
        await list(surface, server, server.adminToken, { cursor: 'not-a-cursor' }),
      ];
      expect(refusals.map((r) => [r.status, r.code])).toEqual([
        [403, 'auth.forbidden'],
        [401, 'auth.unauthenticated'],
        [400, 'request.invalid'],
        [400, 'request.invalid'],
        [400, 'request.invalid'],
      ]);
      // The server keeps serving the admin.
      expect((await list(surface, server, server.adminToken)).status).toBe(200);
    });
  }
});
