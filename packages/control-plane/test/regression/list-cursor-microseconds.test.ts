/**
 * Regression: `session.list` and `participant.list` built their next-page cursor from a
 * JavaScript Date (milliseconds) while rows are ordered by PostgreSQL timestamps
 * (microseconds): the cursor sorted before its own row, so the last item of a page came back
 * first on the next one. Cursor keys now carry the database's microseconds.
 */
import { describe, expect, it } from 'vitest';
import { mutate, query } from '../http.js';
import { startTestServer } from '../server.js';

interface Page {
  items: Record<string, string>[];
  nextCursor: string | null;
}

async function walk(url: string, path: string, token: string, key: string): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await query<Page>(
      url,
      path,
      { limit: 2, ...(cursor ? { cursor } : {}) },
      { token },
    );
    expect(page.status).toBe(200);
    seen.push(...page.data.items.map((i) => i[key]!));
    cursor = page.data.nextCursor ?? undefined;
  } while (cursor);
  return seen;
}

describe('list cursors keep the database clock precision', () => {
  it('session.list pages neither repeat nor skip a session', async () => {
    await using server = await startTestServer();
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await mutate<{ sessionId: string }>(
        server.url,
        'session.create',
        { name: `s${i}` },
        { token: server.adminToken },
      );
      created.push(r.data.sessionId);
    }
    expect(await walk(server.url, 'session.list', server.adminToken, 'sessionId')).toEqual(created);
  });

  it('participant.list pages neither repeat nor skip a participant', async () => {
    await using server = await startTestServer();
    const created = [server.adminParticipantId];
    for (let i = 0; i < 4; i++) {
      const r = await mutate<{ participantId: string }>(
        server.url,
        'participant.create',
        { name: `p${i}`, role: 'member' },
        { token: server.adminToken },
      );
      created.push(r.data.participantId);
    }
    expect(await walk(server.url, 'participant.list', server.adminToken, 'participantId')).toEqual(
      created,
    );
  });
});
