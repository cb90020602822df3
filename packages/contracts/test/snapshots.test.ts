import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CONTRACT_VERSION,
  SNAPSHOT_INDEX_FILE,
  WIRE_PROCEDURES,
  buildProcedureSnapshot,
  checkSnapshotFiles,
  formatSnapshotCheck,
  parseSnapshotIndex,
  renderSnapshotFiles,
  type WireProcedure,
} from '../src/index.js';

const SNAPSHOT_DIR = fileURLToPath(new URL('../snapshots/', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../scripts/snapshots.ts', import.meta.url));

async function readSnapshots(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()) {
    files.set(name, await readFile(join(dir, name), 'utf8'));
  }
  return files;
}

describe('checked-in snapshots', () => {
  it('are up to date with WIRE_PROCEDURES and CONTRACT_VERSION (run `pnpm contracts:snapshot` if this fails)', async () => {
    const expected = renderSnapshotFiles(WIRE_PROCEDURES, CONTRACT_VERSION);
    const check = checkSnapshotFiles(expected, await readSnapshots(SNAPSHOT_DIR), CONTRACT_VERSION);
    expect(formatSnapshotCheck(check)).toEqual([
      `contract snapshots are up to date (contract version ${CONTRACT_VERSION})`,
    ]);
    expect({ missing: check.missing, extra: check.extra, different: check.different }).toEqual({
      missing: [],
      extra: [],
      different: [],
    });
    expect(check.ok).toBe(true);
  });

  it('the index lists every wire procedure and the contract version', async () => {
    const index = parseSnapshotIndex(
      await readFile(join(SNAPSHOT_DIR, SNAPSHOT_INDEX_FILE), 'utf8'),
    );
    expect(index).toEqual({
      contractVersion: CONTRACT_VERSION,
      procedures: Object.keys(WIRE_PROCEDURES).sort(),
    });
  });

  it('each procedure file holds { procedure, kind, input, output } with sorted keys and a trailing newline', async () => {
    for (const [name, definition] of Object.entries(WIRE_PROCEDURES)) {
      const text = await readFile(join(SNAPSHOT_DIR, `${name}.json`), 'utf8');
      expect(text.endsWith('}\n'), name).toBe(true);
      const parsed = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(parsed), name).toEqual(['input', 'kind', 'output', 'procedure']);
      expect(parsed, name).toEqual({
        procedure: name,
        kind: definition.kind,
        input: z.toJSONSchema(definition.input, { io: 'input', unrepresentable: 'any' }),
        output: z.toJSONSchema(definition.output, { io: 'output', unrepresentable: 'any' }),
      });
    }
  });
});

describe('snapshot rendering', () => {
  it('is deterministic and independent of procedure declaration order', () => {
    const reversed = Object.fromEntries(Object.entries(WIRE_PROCEDURES).reverse()) as Record<
      string,
      WireProcedure
    >;
    expect([...renderSnapshotFiles(reversed, '1.0')]).toEqual([
      ...renderSnapshotFiles(WIRE_PROCEDURES, '1.0'),
    ]);
  });

  it('refuses procedure names that cannot safely name a file', () => {
    const definition: WireProcedure = { kind: 'query', input: z.null(), output: z.null() };
    for (const name of ['../evil', 'a/b', 'index', '', '.hidden']) {
      expect(() => renderSnapshotFiles({ [name]: definition }, '1.0'), name).toThrow();
    }
  });
});

describe('snapshot check', () => {
  const base = z.strictObject({ nodeId: z.string(), state: z.enum(['a', 'b']) });
  const procedures = (
    input: z.ZodType,
    extra: Record<string, WireProcedure> = {},
  ): Record<string, WireProcedure> => ({
    'thing.do': { kind: 'mutation', input, output: z.null() },
    ...extra,
  });
  const checked = renderSnapshotFiles(procedures(base), '1.0');

  it('up-to-date files pass', () => {
    const check = checkSnapshotFiles(checked, checked, '1.0');
    expect(check.ok).toBe(true);
    expect(check.changes).toEqual([]);
  });

  it('a breaking change without a MAJOR bump fails and says MAJOR and how to regenerate', () => {
    const current = renderSnapshotFiles(procedures(base.omit({ state: true })), '1.0');
    const check = checkSnapshotFiles(current, checked, '1.0');
    expect(check.ok).toBe(false);
    expect(check.different).toEqual(['thing.do.json']);
    expect(check.summary.bump).toBe('major');
    expect(check.versionCheck?.ok).toBe(false);
    const report = formatSnapshotCheck(check).join('\n');
    expect(report).toContain('BREAKING thing.do input /state: field removed');
    expect(report).toContain('MAJOR');
    expect(report).toContain('pnpm contracts:snapshot');
  });

  it('a breaking change with MAJOR raised passes the version rule but is still stale', () => {
    const current = renderSnapshotFiles(procedures(base.omit({ state: true })), '2.0');
    const check = checkSnapshotFiles(current, checked, '2.0');
    expect(check.versionCheck?.ok).toBe(true);
    expect(check.upToDate).toBe(false);
    expect(check.ok).toBe(false);
    // Once regenerated with the new version, all is well.
    expect(checkSnapshotFiles(current, current, '2.0').ok).toBe(true);
  });

  it('an additive change needs MAJOR.MINOR to be greater; the report says MINOR', () => {
    const added = procedures(base, {
      'thing.new': { kind: 'query', input: z.null(), output: z.null() },
    });
    const sameVersion = checkSnapshotFiles(renderSnapshotFiles(added, '1.0'), checked, '1.0');
    expect(sameVersion.missing).toEqual(['thing.new.json']);
    expect(sameVersion.summary.bump).toBe('minor');
    expect(sameVersion.versionCheck?.ok).toBe(false);
    expect(formatSnapshotCheck(sameVersion).join('\n')).toContain('MINOR');
    expect(
      checkSnapshotFiles(renderSnapshotFiles(added, '1.1'), checked, '1.1').versionCheck?.ok,
    ).toBe(true);
  });

  it('a removed procedure shows up as an extra file and a breaking change', () => {
    const withOld = renderSnapshotFiles(
      procedures(base, { 'thing.old': { kind: 'query', input: z.null(), output: z.null() } }),
      '1.0',
    );
    const check = checkSnapshotFiles(checked, withOld, '1.0');
    expect(check.extra).toEqual(['thing.old.json']);
    expect(check.changes.map((c) => [c.procedure, c.kind, c.severity])).toEqual([
      ['thing.old', 'procedure-removed', 'breaking'],
    ]);
  });

  it('an unreadable checked-in snapshot is a breaking unclassified change', () => {
    const corrupt = new Map(checked);
    corrupt.set('thing.do.json', '{ not json');
    const check = checkSnapshotFiles(checked, corrupt, '1.0');
    expect(check.different).toEqual(['thing.do.json']);
    expect(check.changes.map((c) => [c.kind, c.severity])).toEqual([
      ['unclassified-change', 'breaking'],
    ]);
  });

  it('buildProcedureSnapshot records kind and both directions', () => {
    const snapshot = buildProcedureSnapshot('thing.do', procedures(base)['thing.do']!);
    expect(snapshot.kind).toBe('mutation');
    expect(snapshot.output).toMatchObject({ type: 'null' });
    expect(snapshot.input).toMatchObject({ type: 'object', required: ['nodeId', 'state'] });
  });
});

// Each CLI call starts a Node process running tsx: allow for slow machines.
describe('snapshot CLI', { timeout: 60_000 }, () => {
  const run = promisify(execFile);
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function cli(...args: string[]): Promise<{ code: number; output: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', SCRIPT, ...args]);
      return { code: 0, output: stdout + stderr };
    } catch (error) {
      const failure = error as { code?: number; stdout?: string; stderr?: string };
      return { code: failure.code ?? -1, output: (failure.stdout ?? '') + (failure.stderr ?? '') };
    }
  }

  it('check exits 0 on the checked-in snapshots', async () => {
    const result = await cli('check');
    expect(result.output).toContain('up to date');
    expect(result.code).toBe(0);
  });

  it('check exits non-zero on a stale directory; write fixes it; extra files are removed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-snapshots-'));
    dirs.push(dir);
    const empty = await cli('check', '--dir', dir);
    expect(empty.code).toBe(1);
    expect(empty.output).toContain('missing snapshot');

    expect((await cli('write', '--dir', dir)).code).toBe(0);
    expect((await cli('check', '--dir', dir)).code).toBe(0);

    // The checked-in detach input lacks a field the contract has now (so it was "added"), and a
    // procedure that no longer exists is still checked in (so it was "removed").
    const detachFile = join(dir, 'runtimenode.detach.json');
    const snapshot = JSON.parse(await readFile(detachFile, 'utf8')) as {
      input: { properties: Record<string, unknown> };
    };
    delete snapshot.input.properties.reason;
    await writeFile(detachFile, `${JSON.stringify(snapshot, null, 2)}\n`);
    await writeFile(join(dir, 'gone.procedure.json'), await readFile(detachFile, 'utf8'));
    const stale = await cli('check', '--dir', dir);
    expect(stale.code).toBe(1);
    expect(stale.output).toContain(
      'ADDITIVE runtimenode.detach input /reason: optional field added',
    );
    expect(stale.output).toContain('BREAKING gone.procedure procedure /: procedure removed');
    expect(stale.output).toContain('MAJOR');
    expect(stale.output).toContain('pnpm contracts:snapshot');

    // Recording a breaking change without a MAJOR bump is refused unless forced.
    const refused = await cli('write', '--dir', dir);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain('Not writing');
    expect((await cli('write', '--force', '--dir', dir)).code).toBe(0);
    expect((await cli('check', '--dir', dir)).code).toBe(0);
    expect((await readdir(dir)).includes('gone.procedure.json')).toBe(false);
  });

  it('rejects unknown arguments with exit code 2', async () => {
    expect((await cli('check', '--nope')).code).toBe(2);
    expect((await cli('frobnicate')).code).toBe(2);
  });
});
