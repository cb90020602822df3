/**
 * The release gate on fixture contracts: a recorded release ("before") and the contract the code
 * would render ("after"), both built from small Zod fixtures here. The real snapshots and
 * releases are only read, never written (the CLI tests work on copies in a temp directory).
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CONTRACT_VERSION,
  WIRE_PROCEDURES,
  checkContractGate,
  compareEventEnvelopeVersion,
  formatContractGate,
  isEventEnvelopeVersion,
  parseChangelog,
  parseEventEnvelopeVersion,
  renderSnapshotFiles,
  type ContractGate,
  type RecordedRelease,
  type WireProcedure,
} from '../src/index.js';
import { CONTRACTS_ROOT, readContractFiles, releaseDigest } from '../src/node.js';

type Procedures = Record<string, WireProcedure>;

/** Release 1.1 of the fixture contract: one mutation with a strict input and an open output. */
const DetachInput = z.strictObject({ nodeId: z.string(), reason: z.string().optional() });
const DetachOutput = z.object({ ok: z.boolean() });
const V11: Procedures = {
  'thing.detach': { kind: 'mutation', input: DetachInput, output: DetachOutput },
};

function withInput(input: z.ZodType): Procedures {
  return { 'thing.detach': { kind: 'mutation', input, output: DetachOutput } };
}

const RENAMED = withInput(z.strictObject({ nodeId: z.string(), why: z.string().optional() }));
const OPTIONAL_ADDED = withInput(DetachInput.extend({ force: z.boolean().optional() }));

function recorded(procedures: Procedures, version: string): RecordedRelease {
  const files = renderSnapshotFiles(procedures, version);
  return { files, digest: releaseDigest(files) };
}

interface Entry {
  version: string;
  release?: RecordedRelease;
}

function changelog(...entries: Entry[]): string {
  return [
    '# Changelog',
    '',
    ...entries.flatMap((entry) => [
      `## ${entry.version}`,
      '',
      ...(entry.release ? [`Released: ${entry.release.digest}`, ''] : []),
      `- what changed in ${entry.version}`,
      '',
    ]),
  ].join('\n');
}

interface Scenario {
  version: string;
  current: Procedures;
  releases?: Record<string, Procedures>;
  /** Changelog entries besides the releases' own (which are always written). */
  unreleased?: string[];
  snapshots?: Map<string, string>;
  changelogText?: string;
}

function gate(scenario: Scenario): ContractGate {
  const releases = new Map(
    Object.entries(scenario.releases ?? { '1.1': V11 }).map(
      ([version, procedures]) => [version, recorded(procedures, version)] as const,
    ),
  );
  const rendered = renderSnapshotFiles(scenario.current, scenario.version);
  const entries: Entry[] = [
    ...(scenario.unreleased ?? []).map((version) => ({ version })),
    ...[...releases].map(([version, release]) => ({ version, release })),
  ]
    .filter((entry) => isEventEnvelopeVersion(entry.version))
    .sort((a, b) => compareEventEnvelopeVersion(b.version, a.version));
  return checkContractGate({
    currentVersion: scenario.version,
    rendered,
    snapshots: scenario.snapshots ?? rendered,
    releases,
    changelog: scenario.changelogText ?? changelog(...entries),
  });
}

function problems(result: ContractGate): string[] {
  return result.problems.map((p) => `[${p.rule}] ${p.message}`);
}

describe('release gate: the version follows the change since the last release', () => {
  it('an unchanged contract at the released version passes', () => {
    const result = gate({ version: '1.1', current: V11 });
    expect(problems(result)).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.summary.severity).toBe('none');
  });

  it('a renamed input field without a MAJOR bump fails; 1.2 is not enough; 2.0 with its entry passes', () => {
    const same = gate({ version: '1.1', current: RENAMED });
    expect(same.ok).toBe(false);
    expect(same.summary.severity).toBe('breaking');
    expect(same.changes.map((c) => `${c.severity} ${c.path} ${c.kind}`)).toEqual([
      'breaking /reason field-removed',
      'additive /why field-added',
    ]);
    expect(problems(same)).toEqual([
      '[version] breaking changes since release 1.1 need a MAJOR bump: CONTRACT_VERSION must be 2.0 (it is 1.1)',
    ]);

    const minor = gate({ version: '1.2', current: RENAMED, unreleased: ['1.2'] });
    expect(problems(minor)).toEqual([
      '[version] breaking changes since release 1.1 need a MAJOR bump: CONTRACT_VERSION must be 2.0 (it is 1.2)',
    ]);

    const major = gate({ version: '2.0', current: RENAMED, unreleased: ['2.0'] });
    expect(problems(major)).toEqual([]);
    expect(major.ok).toBe(true);
  });

  it('an added optional input field needs the MINOR bump and its changelog entry; with both it passes', () => {
    const noBump = gate({ version: '1.1', current: OPTIONAL_ADDED });
    expect(noBump.summary.severity).toBe('additive');
    expect(problems(noBump)).toEqual([
      '[version] additive changes since release 1.1 need a MINOR bump: CONTRACT_VERSION must be 1.2 or 2.0 (it is 1.1)',
    ]);

    const noEntry = gate({ version: '1.2', current: OPTIONAL_ADDED });
    expect(problems(noEntry)).toEqual([
      '[changelog] CHANGELOG.md has no "## 1.2" entry saying what changed in the unreleased CONTRACT_VERSION 1.2',
    ]);

    const both = gate({ version: '1.2', current: OPTIONAL_ADDED, unreleased: ['1.2'] });
    expect(problems(both)).toEqual([]);
    expect(both.allowedVersions).toEqual(['1.2', '2.0']);
  });

  it('a MAJOR may be raised for a change schemas cannot show (e.g. the wire encoding)', () => {
    expect(gate({ version: '2.0', current: V11, unreleased: ['2.0'] }).ok).toBe(true);
  });

  it('versions never go down and never skip: 1.0 and 1.3 and 3.0 after release 1.1 all fail', () => {
    for (const version of ['1.0', '1.3', '3.0']) {
      const result = gate({ version, current: OPTIONAL_ADDED, unreleased: [version] });
      expect(
        result.problems.map((p) => p.rule),
        version,
      ).toContain('version');
    }
    expect(problems(gate({ version: '1.0', current: V11 }))).toContain(
      '[version] CONTRACT_VERSION 1.0 is below the last release 1.1; versions only go up',
    );
  });

  it('a removed procedure is breaking; an added one is additive', () => {
    const removed = gate({ version: '1.2', current: {}, unreleased: ['1.2'] });
    expect(removed.summary.severity).toBe('breaking');
    const added = gate({
      version: '1.2',
      current: { ...V11, 'thing.new': { kind: 'query', input: z.null(), output: z.null() } },
      unreleased: ['1.2'],
    });
    expect(added.ok).toBe(true);
  });

  it('clients of every earlier MINOR of the same MAJOR are protected, not just the last release', () => {
    // 1.1 had a closed output; 1.2 opened it (additive). Adding an output field is additive
    // against 1.2 but breaks 1.1 clients that validate the closed schema: that needs 2.0.
    const closed = {
      'thing.detach': {
        kind: 'mutation',
        input: DetachInput,
        output: z.strictObject({ ok: z.boolean() }),
      },
    } satisfies Procedures;
    const withField = {
      'thing.detach': {
        kind: 'mutation',
        input: DetachInput,
        output: DetachOutput.extend({ at: z.string() }),
      },
    } satisfies Procedures;
    const result = gate({
      version: '1.3',
      current: withField,
      releases: { '1.1': closed, '1.2': V11 },
      unreleased: ['1.3'],
    });
    expect(result.summary.severity).toBe('additive');
    expect(problems(result)).toEqual([
      '[compatibility] breaks clients of release 1.1 (same MAJOR): BREAKING thing.detach output /at: field added to an object that old clients validate as closed (additionalProperties: false)',
    ]);
    const major = gate({
      version: '2.0',
      current: withField,
      releases: { '1.1': closed, '1.2': V11 },
      unreleased: ['2.0'],
    });
    expect(problems(major)).toEqual([]);
  });
});

describe('release gate: releases, snapshots and changelog', () => {
  it('stale working snapshots fail and name the command that regenerates them', () => {
    const result = gate({
      version: '1.1',
      current: V11,
      snapshots: renderSnapshotFiles(RENAMED, '1.1'),
    });
    expect(problems(result)).toEqual([
      '[snapshots] snapshots/ is not what the code renders (thing.detach.json): run `pnpm contracts:snapshot` and commit the result',
    ]);
  });

  it('an edited release fails on its digest (laundering a change into the last release)', () => {
    const edited = recorded(RENAMED, '1.1');
    const honest = recorded(V11, '1.1');
    const result = checkContractGate({
      currentVersion: '1.1',
      rendered: renderSnapshotFiles(RENAMED, '1.1'),
      snapshots: renderSnapshotFiles(RENAMED, '1.1'),
      releases: new Map([['1.1', edited]]),
      changelog: changelog({ version: '1.1', release: honest }),
    });
    expect(problems(result)).toEqual([
      `[release] releases/1.1 changed since it was cut (digest ${edited.digest}, CHANGELOG.md records ${honest.digest}); a release is never edited: restore it`,
    ]);
  });

  it('a deleted release that the changelog records fails', () => {
    const r11 = recorded(V11, '1.1');
    const r12 = recorded(OPTIONAL_ADDED, '1.2');
    const result = checkContractGate({
      currentVersion: '1.2',
      rendered: r12.files,
      snapshots: r12.files,
      releases: new Map([['1.1', r11]]),
      changelog: changelog({ version: '1.2', release: r12 }, { version: '1.1', release: r11 }),
    });
    expect(problems(result)).toEqual([
      '[release] CHANGELOG.md records release 1.2, but releases/1.2 is missing',
    ]);
  });

  it('a release whose changelog entry lacks the digest, or that has no entry, fails', () => {
    const r11 = recorded(V11, '1.1');
    const base = {
      currentVersion: '1.1',
      rendered: r11.files,
      snapshots: r11.files,
      releases: new Map([['1.1', r11]]),
    };
    expect(
      problems(checkContractGate({ ...base, changelog: changelog({ version: '1.1' }) })),
    ).toEqual([
      '[changelog] the CHANGELOG.md entry for 1.1 lacks its "Released:" line (releases are cut with `pnpm contracts:release`)',
    ]);
    expect(problems(checkContractGate({ ...base, changelog: '# Changelog\n' }))).toEqual([
      '[changelog] releases/1.1 has no "## 1.1" entry in CHANGELOG.md',
    ]);
    expect(problems(checkContractGate({ ...base, changelog: null }))).toEqual([
      '[changelog] CHANGELOG.md is missing',
      '[changelog] releases/1.1 has no "## 1.1" entry in CHANGELOG.md',
    ]);
  });

  it('a release that does not follow from the one before fails (a breaking change recorded as a MINOR)', () => {
    const result = gate({
      version: '1.2',
      current: RENAMED,
      releases: { '1.1': V11, '1.2': RENAMED },
    });
    expect(problems(result)).toContain(
      '[release] releases/1.2 does not follow from releases/1.1: its breaking changes allow 2.0',
    );
  });

  it('a release directory must be complete and say its own version', () => {
    const r11 = recorded(V11, '1.1');
    const files = new Map(r11.files);
    files.delete('thing.detach.json');
    files.set('extra.thing.json', r11.files.get('thing.detach.json')!);
    const broken: RecordedRelease = { files, digest: releaseDigest(files) };
    const result = checkContractGate({
      currentVersion: '1.1',
      rendered: r11.files,
      snapshots: r11.files,
      releases: new Map([['1.1', broken]]),
      changelog: changelog({ version: '1.1', release: broken }),
    });
    expect(problems(result).filter((p) => p.startsWith('[release]'))).toEqual([
      '[release] releases/1.1: thing.detach.json is missing',
      '[release] releases/1.1: extra.thing.json is not in the index',
    ]);
    const misnamed = gate({ version: '1.1', current: V11, releases: { '1.1': V11, latest: V11 } });
    expect(problems(misnamed)).toContain('[release] releases/latest is not named MAJOR.MINOR');
  });

  it('no release at all: the check fails with the one problem the first release may skip', () => {
    const result = gate({ version: '1.0', current: V11, releases: {}, unreleased: ['1.0'] });
    expect(result.problems).toEqual([
      {
        rule: 'release',
        message:
          'no release is recorded under releases/: there is nothing to compare with; cut the first one with `pnpm contracts:release`',
        noRelease: true,
      },
    ]);
  });

  it('an unreleased entry other than CONTRACT_VERSION must be folded into it; none may be above it', () => {
    const folded = gate({ version: '2.0', current: RENAMED, unreleased: ['2.0', '1.2'] });
    expect(problems(folded)).toEqual([
      '[changelog] CHANGELOG.md has an entry for 1.2, which was never released and is not CONTRACT_VERSION 2.0: fold it into the 2.0 entry',
    ]);
    const above = gate({ version: '1.2', current: OPTIONAL_ADDED, unreleased: ['2.0', '1.2'] });
    expect(problems(above)).toEqual([
      '[changelog] CHANGELOG.md has an entry for 2.0, above CONTRACT_VERSION 1.2',
    ]);
    // History before the first release is allowed.
    expect(gate({ version: '1.1', current: V11, unreleased: ['1.0'] }).ok).toBe(true);
  });

  it('the report lists the changes, the allowed versions and every problem', () => {
    const lines = formatContractGate(gate({ version: '1.1', current: RENAMED }));
    expect(lines).toEqual([
      'BREAKING thing.detach input /reason: field removed (old clients still send it: unrecognized key)',
      'ADDITIVE thing.detach input /why: optional field added',
      'contract 1.1 against release 1.1: breaking (1 breaking, 1 additive change(s)); allowed versions: 2.0',
      'contract check FAILED (1 problem(s)):',
      '  [version] breaking changes since release 1.1 need a MAJOR bump: CONTRACT_VERSION must be 2.0 (it is 1.1)',
      '  Set CONTRACT_VERSION in packages/contracts/src/version.ts, add its "## MAJOR.MINOR" entry to packages/contracts/CHANGELOG.md, then run `pnpm contracts:snapshot`.',
    ]);
  });
});

describe('changelog format', () => {
  const digest = `sha256:${'a'.repeat(64)}`;

  it('parses entries newest first, with the release digest and the body', () => {
    const parsed = parseChangelog(
      [
        '# Title',
        'free preamble',
        '',
        '## 1.2',
        '',
        '- added x',
        '',
        '## 1.1',
        '',
        `Released: ${digest}`,
        '',
        '- first',
        '  more',
        '### Notes',
        'text',
      ].join('\n'),
    );
    expect(parsed.errors).toEqual([]);
    expect(parsed.entries).toEqual([
      { version: '1.2', released: null, body: '- added x', line: 4 },
      { version: '1.1', released: digest, body: '- first\n  more\n### Notes\ntext', line: 8 },
    ]);
  });

  it('rejects malformed headings, wrong order, duplicates, empty entries and misplaced Released lines', () => {
    const errors = parseChangelog(
      [
        '## v1.3',
        '- x',
        '## 1.1',
        '- x',
        '## 1.2',
        '- x',
        '## 1.2',
        '- x',
        '## 1.0',
        'no bullet here',
        '## 0.9',
        '- x',
        `Released: ${digest}`,
        '## 0.8',
        'Released: sha256:short',
        '- x',
        '# Stray title',
      ].join('\n'),
    ).errors;
    expect(errors).toEqual([
      'line 1: "## v1.3" is not an entry heading; write "## MAJOR.MINOR" exactly',
      'line 9: the entry for 1.0 has no "- " bullet saying what changed',
      'line 13: "Released:" must be the first line of the 0.9 entry, once',
      'line 15: write "Released: sha256:<64 lowercase hex>"',
      'line 17: a "# " heading inside the entries; entries are "## MAJOR.MINOR"',
      'line 5: 1.2 comes after 1.1; entries go newest first',
      'line 7: a second entry for 1.2',
    ]);
  });
});

// Each CLI call starts a Node process running tsx: allow for slow machines.
describe('contract CLI (on copies of the real files)', { timeout: 60_000 }, () => {
  const SCRIPT = fileURLToPath(new URL('../scripts/contract.ts', import.meta.url));
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

  const DETACH_WHY_FIXTURE = fileURLToPath(
    new URL('./fixtures/runtimenode.detach.why.json', import.meta.url),
  );

  async function writeFiles(dir: string, files: ReadonlyMap<string, string>): Promise<void> {
    await mkdir(dir, { recursive: true });
    for (const [name, text] of files) await writeFile(join(dir, name), text);
  }

  async function copyOfRealRoot(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'tether-contract-'));
    dirs.push(dir);
    for (const part of ['snapshots', 'releases', 'CHANGELOG.md']) {
      await cp(join(CONTRACTS_ROOT, part), join(dir, part), { recursive: true });
    }
    return dir;
  }

  it('check passes on the real package', async () => {
    const result = await cli('check');
    expect(result.output).toContain('contract check passed');
    expect(result.code).toBe(0);
  });

  it('check fails when the code renames a field that the last release has, at the same version', async () => {
    // The fixture: a release of the current version whose runtimenode.detach snapshot
    // (test/fixtures/runtimenode.detach.why.json) calls the code's `reason` field `why`, so
    // against that release the field was renamed. Every other file is what the code renders; no
    // real snapshot or release is read or written.
    const root = await mkdtemp(join(tmpdir(), 'tether-contract-'));
    dirs.push(root);
    const rendered = renderSnapshotFiles(WIRE_PROCEDURES, CONTRACT_VERSION);
    const release = new Map(rendered);
    release.set('runtimenode.detach.json', await readFile(DETACH_WHY_FIXTURE, 'utf8'));
    await writeFiles(join(root, 'snapshots'), rendered);
    await writeFiles(join(root, 'releases', CONTRACT_VERSION), release);
    await writeFile(
      join(root, 'CHANGELOG.md'),
      changelog({
        version: CONTRACT_VERSION,
        release: { files: release, digest: releaseDigest(release) },
      }),
    );
    const result = await cli('check', '--root', root);
    const nextMajor = `${parseEventEnvelopeVersion(CONTRACT_VERSION).major + 1n}.0`;
    expect(result.output).toContain('BREAKING runtimenode.detach input /why: field removed');
    expect(result.output).toContain(
      `breaking changes since release ${CONTRACT_VERSION} need a MAJOR bump: CONTRACT_VERSION must be ${nextMajor}`,
    );
    expect(result.code).toBe(1);
  });

  it('snapshot rewrites a stale snapshots/ (extra files removed); check then passes', async () => {
    const root = await copyOfRealRoot();
    await writeFile(join(root, 'snapshots', 'gone.procedure.json'), '{}\n');
    await writeFile(join(root, 'snapshots', 'system.info.json'), '{}\n');
    const stale = await cli('check', '--root', root);
    expect(stale.output).toContain('[snapshots] snapshots/ is not what the code renders');
    expect(stale.code).toBe(1);
    expect((await cli('snapshot', '--root', root)).code).toBe(0);
    expect(await readdir(join(root, 'snapshots'))).not.toContain('gone.procedure.json');
    expect((await cli('check', '--root', root)).code).toBe(0);
  });

  it('release cuts the first release, records its digest, and refuses to cut the same version twice', async () => {
    const root = await copyOfRealRoot();
    await rm(join(root, 'releases'), { recursive: true });
    await writeFile(join(root, 'CHANGELOG.md'), changelog({ version: CONTRACT_VERSION }));
    expect((await cli('check', '--root', root)).code).toBe(1);
    const first = await cli('release', '--root', root);
    expect(first.output).toContain(`released contract ${CONTRACT_VERSION}`);
    expect(first.code).toBe(0);
    const files = await readContractFiles(root);
    const release = files.releases.get(CONTRACT_VERSION)!;
    expect(release.files).toEqual(renderSnapshotFiles(WIRE_PROCEDURES, CONTRACT_VERSION));
    expect(parseChangelog(files.changelog!).entries[0]!.released).toBe(release.digest);
    expect((await cli('check', '--root', root)).code).toBe(0);
    const again = await cli('release', '--root', root);
    expect(again.output).toContain('Nothing to release');
    expect(again.code).toBe(1);
  });

  it('release refuses while the check fails (no changelog entry for the new version)', async () => {
    const root = await copyOfRealRoot();
    await writeFile(join(root, 'CHANGELOG.md'), '# Changelog\n');
    const result = await cli('release', '--root', root);
    expect(result.output).toContain('Not releasing');
    expect(result.code).toBe(1);
    expect(await readFile(join(root, 'CHANGELOG.md'), 'utf8')).toBe('# Changelog\n');
  });

  it('there is no override: --force and unknown arguments are usage errors (exit 2)', async () => {
    expect((await cli('check', '--force')).code).toBe(2);
    expect((await cli('snapshot', '--force')).code).toBe(2);
    expect((await cli('write')).code).toBe(2);
  });
});
