import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CONTRACT_VERSION,
  SNAPSHOT_INDEX_FILE,
  WIRE_PROCEDURES,
  buildProcedureSnapshot,
  diffSnapshotFiles,
  parseSnapshotIndex,
  publishedJsonSchema,
  renderSnapshotFiles,
  type WireProcedure,
} from '../src/index.js';
import { CONTRACTS_ROOT, readSnapshotDir } from '../src/node.js';

const SNAPSHOT_DIR = join(CONTRACTS_ROOT, 'snapshots');

describe('checked-in snapshots', () => {
  it('are up to date with WIRE_PROCEDURES and CONTRACT_VERSION (run `pnpm contracts:snapshot` if this fails)', async () => {
    const expected = renderSnapshotFiles(WIRE_PROCEDURES, CONTRACT_VERSION);
    const diff = diffSnapshotFiles(expected, await readSnapshotDir(SNAPSHOT_DIR));
    expect(diff).toEqual({ missing: [], extra: [], different: [], upToDate: true });
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
        input: publishedJsonSchema(definition.input, 'input'),
        output: publishedJsonSchema(definition.output, 'output'),
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

describe('snapshot diff', () => {
  const one: Record<string, WireProcedure> = {
    'thing.do': { kind: 'mutation', input: z.strictObject({ a: z.string() }), output: z.null() },
  };
  const two: Record<string, WireProcedure> = {
    ...one,
    'thing.new': { kind: 'query', input: z.null(), output: z.null() },
  };

  it('names missing, extra and different files', () => {
    const changed: Record<string, WireProcedure> = {
      'thing.do': { kind: 'query', input: z.strictObject({ a: z.string() }), output: z.null() },
    };
    expect(
      diffSnapshotFiles(renderSnapshotFiles(two, '1.0'), renderSnapshotFiles(one, '1.0')),
    ).toEqual({
      missing: ['thing.new.json'],
      extra: [],
      different: [SNAPSHOT_INDEX_FILE],
      upToDate: false,
    });
    expect(
      diffSnapshotFiles(renderSnapshotFiles(one, '1.0'), renderSnapshotFiles(two, '1.0')).extra,
    ).toEqual(['thing.new.json']);
    expect(
      diffSnapshotFiles(renderSnapshotFiles(changed, '1.0'), renderSnapshotFiles(one, '1.0'))
        .different,
    ).toEqual(['thing.do.json']);
  });

  it('buildProcedureSnapshot records kind and both sides', () => {
    const snapshot = buildProcedureSnapshot('thing.do', one['thing.do']!);
    expect(snapshot.kind).toBe('mutation');
    expect(snapshot.output).toMatchObject({ type: 'null' });
    expect(snapshot.input).toMatchObject({ type: 'object', required: ['a'] });
  });
});
