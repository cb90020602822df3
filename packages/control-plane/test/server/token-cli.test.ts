/**
 * `tether-server token create [--admin] --name NAME` against the database of a running server:
 * it prints the participant, the token id and the token once; `--admin` (and only it) makes an
 * admin; the token works at once over HTTP with that role; the database keeps its hash only.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hashToken } from '../../src/auth/tokens.js';
import { errorCode, query } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';

const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));

interface Created {
  participantId: string;
  role: string;
  tokenId: string;
  token: string;
}

/** Runs the command as an operator does, in its own process, and reads what it printed. */
function tokenCreate(server: TestServer, args: string[]): Promise<Created> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: server.config.databaseUrl,
    TETHER_BOOTSTRAP_TOKEN: undefined,
  };
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/server/cli.ts', 'token', 'create', ...args],
      { cwd: PACKAGE_DIR, env, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`token create failed: ${stderr}`));
        const participant = /^participant (\S+) \((admin|member)\)$/m.exec(stdout);
        const tokenId = /^token id\s+(\S+)$/m.exec(stdout)?.[1];
        const token = /^token\s+(tpt_\S+)$/m.exec(stdout)?.[1];
        if (!participant || !tokenId || !token) return reject(new Error(`unexpected: ${stdout}`));
        resolve({ participantId: participant[1]!, role: participant[2]!, tokenId, token });
      },
    );
  });
}

describe('tether-server token create', () => {
  it('--admin makes an admin whose token works at once; without it, a member; the database keeps its hash only', async () => {
    await using server = await startTestServer();
    const admin = await tokenCreate(server, ['--admin', '--name', 'ops']);
    const member = await tokenCreate(server, ['--name', 'dev']);
    expect([admin.role, member.role]).toEqual(['admin', 'member']);

    const { rows } = await server.db.query<{
      participant_id: string;
      id: string;
      role: string;
      name: string;
      token_hash: Buffer;
    }>(
      `SELECT t.participant_id, t.id, p.role, p.name, t.token_hash
         FROM api_tokens t JOIN participants p ON p.id = t.participant_id
        WHERE t.id = ANY($1::uuid[]) ORDER BY p.name DESC`,
      [[admin.tokenId, member.tokenId]],
    );
    expect(rows.map((r) => [r.participant_id, r.id, r.role, r.name])).toEqual([
      [admin.participantId, admin.tokenId, 'admin', 'ops'],
      [member.participantId, member.tokenId, 'member', 'dev'],
    ]);
    expect(rows.map((r) => r.token_hash)).toEqual([
      hashToken(admin.token),
      hashToken(member.token),
    ]);
    // The running server accepts both tokens, each with its role.
    const asAdmin = await query<{ items: { participantId: string }[] }>(
      server.url,
      'participant.list',
      { limit: 500 },
      { token: admin.token },
    );
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.data.items.map((p) => p.participantId)).toEqual(
      expect.arrayContaining([admin.participantId, member.participantId]),
    );
    const asMember = await query(server.url, 'participant.list', {}, { token: member.token });
    expect([asMember.status, errorCode(asMember)]).toEqual([403, 'auth.forbidden']);
    expect((await query(server.url, 'session.list', {}, { token: member.token })).status).toBe(200);
  }, 90_000);
});
