/**
 * The README and docs/api.md work as written: their shell blocks run with bash against a real
 * server (fresh database, free port) and print what the text says they print. Every shell
 * block carries a `docs-test` marker (blocks.ts), so nothing is left out silently: a block is
 * run, or skipped with its reason in the marker.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../db.js';
import { eventually } from '../eventually.js';
import { spawnServer } from '../process-server.js';
import { startTestServer, type TestServer } from '../server.js';
import {
  REPO_ROOT,
  atServer,
  block,
  leadingAssignments,
  matchesOutput,
  parseBlocks,
  readDoc,
  runBash,
  sseFrames,
  startBackground,
} from './blocks.js';

const README = parseBlocks(readDoc('README.md'));
const API = parseBlocks(readDoc('docs/api.md'));
const SHELL = new Set(['sh', 'bash', 'shell']);

/** The tools the documented commands use; a clear failure instead of a confusing one. */
function requireTool(name: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`the docs tests need "${name}" on PATH (the README requires it)`);
  }
}

describe('docs: every shell block is run or skipped with a reason', () => {
  it.each([
    ['README.md', README],
    ['docs/api.md', API],
  ])('%s: every sh block carries a docs-test marker', (_file, blocks) => {
    const unmarked = blocks.filter((b) => SHELL.has(b.lang) && b.kind === null).map((b) => b.line);
    expect(unmarked).toEqual([]);
    const skips = blocks.filter((b) => b.kind === 'skip');
    for (const s of skips) expect(s.name, `skip at line ${s.line} needs a reason`).not.toBe('');
  });
});

describe('docs: nothing cites a document the reader of the repository does not have', () => {
  it('no SPEC §…, STYLE.md or ../shared reference in tracked files', () => {
    // Migration 1's header comment is part of the file's recorded hash: editing it would make
    // every existing database refuse to start, so it stays as it was applied.
    const allowed = new Set(['packages/control-plane/migrations/1_initial-schema.sql']);
    let out = '';
    try {
      out = execFileSync(
        'git',
        [
          'grep',
          '-n',
          '-I',
          '-E',
          'SPEC ?§|STYLE\\.md|\\.\\./shared/|/work/shared',
          '--',
          '.',
          ':!bench/results',
        ],
        { cwd: REPO_ROOT, encoding: 'utf8' },
      );
    } catch (error) {
      // git grep exits 1 when nothing matches; anything else is a real failure.
      if ((error as { status?: number }).status !== 1) throw error;
    }
    const hits = out
      .split('\n')
      .filter((l) => l !== '')
      .filter((l) => !allowed.has(l.split(':')[0]!))
      .filter((l) => !l.startsWith('packages/control-plane/test/docs/readme.test.ts:'));
    expect(hits).toEqual([]);
  });
});

describe('README quickstart against a real server', () => {
  let server: TestServer;
  let base: string;
  const serverEnv = leadingAssignments(block(README, 'server').body);

  beforeAll(async () => {
    requireTool('curl');
    requireTool('jq');
    server = await startTestServer({ env: serverEnv });
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('the server block sets the bootstrap token the script uses', () => {
    expect(serverEnv.TETHER_BOOTSTRAP_TOKEN).toMatch(/^tpt_/);
    expect(block(README, 'run', 'quickstart').body).toContain(
      `ADMIN=\${ADMIN:-${serverEnv.TETHER_BOOTSTRAP_TOKEN}}`,
    );
  });

  it('the quickstart exits 0, prints what the README shows, and the SSE transcript matches the live stream', async () => {
    const sse = block(README, 'sse', 'quickstart');
    const [command, ...transcript] = sse.body.split('\n');
    expect(command).toMatch(/^\$ curl -N /);
    const stream = startBackground(atServer(command!.slice(2), base), {
      ADMIN: serverEnv.TETHER_BOOTSTRAP_TOKEN!,
    });
    try {
      await eventually(
        () => Promise.resolve(stream.output()),
        (out) => out.startsWith(': connected'),
      );
      const run = await runBash(atServer(block(README, 'run', 'quickstart').body, base));
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const expected = block(README, 'output', 'quickstart').body;
      expect(matchesOutput(expected, run.stdout), `got:\n${run.stdout}`).toBe(true);

      const documented = sseFrames(transcript.join('\n'));
      const live = await eventually(
        () => Promise.resolve(sseFrames(stream.output())),
        (frames) => frames.length >= documented.length,
      );
      expect(live[0]!.comments).toEqual(documented[0]!.comments);
      const shape = (f: { fields: Record<string, string> }): unknown => {
        const data = JSON.parse(f.fields.data ?? 'null') as { id: string; type: string };
        return {
          fields: Object.keys(f.fields),
          event: f.fields.event,
          idMatchesData: f.fields.id === data.id,
          typeMatchesData: f.fields.event === data.type,
          dataKeys: Object.keys(data).sort(),
        };
      };
      expect(live.slice(1, documented.length).map(shape)).toEqual(documented.slice(1).map(shape));
    } finally {
      await stream.stop();
    }
  });

  it('running the quickstart again works too (each run enrolls a new node)', async () => {
    const script = atServer(block(README, 'run', 'quickstart').body, base);
    const run = await runBash(script);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(matchesOutput(block(README, 'output', 'quickstart').body, run.stdout)).toBe(true);
  });

  it('the quickstart stops at the first error and prints the error body the README quotes', async () => {
    const script = atServer(block(README, 'run', 'quickstart').body, base);
    const run = await runBash(script, { ADMIN: 'tpt_not-the-bootstrap-token-of-this-server' });
    expect(run.code).not.toBe(0);
    expect(run.stdout).toBe('');
    const quoted = /with a wrong token:\n`(\{"error".*\})`/.exec(readDoc('README.md'))?.[1];
    expect(quoted).toBeDefined();
    // curl's own line (`curl: (22) … 401`), then the body the script prints.
    expect(run.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^curl: \(22\) .* 401$/),
      quoted,
    ]);
  });
});

describe('README quickstart with the first admin of a server started without a bootstrap token', () => {
  it('the first-admin command line runs the saved quickstart.sh with the token file and prints what the README shows', async () => {
    requireTool('curl');
    requireTool('jq');
    const dir = mkdtempSync(join(tmpdir(), 'tether-readme-first-admin-'));
    const database = await createTestDatabase();
    // A real `tether-server serve` with its data directory where the README's reader stands.
    const server = await spawnServer({
      DATABASE_URL: database.url,
      TETHER_DATA_DIR: join(dir, '.tether'),
      TETHER_BOOTSTRAP_TOKEN: undefined,
    });
    try {
      await eventually(
        () => Promise.resolve(existsSync(join(dir, '.tether', 'first-admin-token'))),
        (exists) => exists,
      );
      writeFileSync(
        join(dir, 'quickstart.sh'),
        atServer(block(README, 'run', 'quickstart').body, server.url),
      );
      const run = await runBash(block(README, 'run', 'first-admin').body, {}, { cwd: dir });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(matchesOutput(block(README, 'output', 'quickstart').body, run.stdout)).toBe(true);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('docs/api.md curl examples against a real server', () => {
  let server: TestServer;
  let base: string;
  const admin = leadingAssignments(block(README, 'server').body).TETHER_BOOTSTRAP_TOKEN!;

  beforeAll(async () => {
    requireTool('curl');
    requireTool('jq');
    server = await startTestServer({ env: { TETHER_BOOTSTRAP_TOKEN: admin } });
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server?.stop();
  });

  const walkthrough = block(API, 'run', 'walkthrough');
  const others = API.filter((b) => b.kind === 'run' && b !== walkthrough);

  it('docs/api.md: the walkthrough exits 0 and the node it enrolls is online with gpu', async () => {
    const run = await runBash(atServer(walkthrough.body, base));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('"online":true');
    expect(run.stdout).toMatch(/"state":"online"/);
  });

  it('docs/api.md: its other examples say they follow the walkthrough', () => {
    expect(others.length).toBeGreaterThan(0);
    for (const b of others) expect(b.body, `line ${b.line}`).toMatch(/walkthrough/);
  });

  // They use the walkthrough's variables ($T, $ADMIN, $ID), so each runs after it.
  it.each(others.map((b) => [`${b.name} (line ${b.line})`, b] as const))(
    'docs/api.md: %s exits 0 after the walkthrough',
    async (_label, b) => {
      const run = await runBash(atServer(`${walkthrough.body}\n${b.body}`, base));
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
    },
  );

  it('docs/api.md shows the same SSE transcript as the README (checked live above)', () => {
    expect(block(API, 'sse', 'quickstart-copy').body).toBe(block(README, 'sse', 'quickstart').body);
  });
});
