/**
 * The contract release gate: the contract the code renders now, against the recorded releases
 * (`releases/<MAJOR.MINOR>/`, each the snapshot set of a released version) and the changelog.
 * Pure: file contents in, verdict out; `scripts/contract.ts` reads and writes the files.
 *
 * It holds, and fails on the first breach of, these rules:
 * - every release is complete, and unchanged since it was cut: its digest is recorded in its
 *   changelog entry, and each release follows from the one before by the version rule below;
 * - CONTRACT_VERSION never goes down and is the last release, its next MINOR or its next MAJOR;
 *   the changes since the last release decide which: additive needs at least the next MINOR,
 *   breaking the next MAJOR (a MAJOR may also be raised for a reason schemas cannot show);
 * - nothing breaks a client of any release with the same MAJOR as CONTRACT_VERSION (a MINOR
 *   promise holds for every earlier MINOR, not just the last one);
 * - an unreleased CONTRACT_VERSION has its changelog entry; no other unreleased entry exists
 *   above the last release;
 * - the working snapshots (`snapshots/`) are exactly what the code renders.
 * There is no override: a change that is wrong for its version fails until the version is right.
 */
import {
  compareEventEnvelopeVersion,
  isEventEnvelopeVersion,
  parseEventEnvelopeVersion,
} from '../version.js';
import { CHANGELOG_FILE, parseChangelog, type ChangelogEntry } from './changelog.js';
import {
  SNAPSHOT_INDEX_FILE,
  classifySnapshotChanges,
  diffSnapshotFiles,
  formatCompatChange,
  parseSnapshotIndex,
  readContracts,
  type SnapshotDiff,
  type SnapshotSet,
} from './snapshots.js';
import { summarizeCompatChanges } from './summary.js';
import type { CompatChange, CompatOverallSeverity, CompatSummary } from './types.js';

export const SNAPSHOT_COMMAND = 'pnpm contracts:snapshot';
export const RELEASE_COMMAND = 'pnpm contracts:release';

export interface RecordedRelease {
  readonly files: SnapshotSet;
  /** `sha256:<hex>` of the files, as `releaseDigest` computes it. */
  readonly digest: string;
}

export interface ContractGateInput {
  /** CONTRACT_VERSION. */
  readonly currentVersion: string;
  /** The snapshot set the code renders now. */
  readonly rendered: SnapshotSet;
  /** The checked-in working snapshots (`snapshots/`). */
  readonly snapshots: SnapshotSet;
  /** Every directory under `releases/`, by name. */
  readonly releases: ReadonlyMap<string, RecordedRelease>;
  /** CHANGELOG.md, or null when it does not exist. */
  readonly changelog: string | null;
}

export type GateRule = 'snapshots' | 'release' | 'changelog' | 'version' | 'compatibility';

export interface GateProblem {
  readonly rule: GateRule;
  readonly message: string;
  /** Set on the one problem the first `contracts:release` may ignore: there is no release yet. */
  readonly noRelease?: true;
}

export interface ContractGate {
  readonly ok: boolean;
  readonly currentVersion: string;
  /** The highest version under releases/, or null when none is recorded. */
  readonly lastRelease: string | null;
  /** Whether releases/<CONTRACT_VERSION>/ exists. */
  readonly currentReleased: boolean;
  /** Every change from the last release to the rendered contract. */
  readonly changes: readonly CompatChange[];
  readonly summary: CompatSummary;
  /** The versions the changes allow, in order (e.g. ["1.2", "2.0"]); empty without a release. */
  readonly allowedVersions: readonly string[];
  readonly snapshots: SnapshotDiff;
  readonly problems: readonly GateProblem[];
}

function next(version: string): { minor: string; major: string } {
  const { major, minor } = parseEventEnvelopeVersion(version);
  return { minor: `${major}.${minor + 1n}`, major: `${major + 1n}.0` };
}

/** The versions that may follow release `from` given the severity of the changes since. */
export function allowedVersionsAfter(from: string, severity: CompatOverallSeverity): string[] {
  const { minor, major } = next(from);
  if (severity === 'breaking') return [major];
  if (severity === 'additive') return [minor, major];
  return [from, minor, major];
}

function majorOf(version: string): bigint {
  return parseEventEnvelopeVersion(version).major;
}

function explainVersion(
  from: string,
  current: string,
  severity: CompatOverallSeverity,
  allowed: readonly string[],
): string | null {
  if (allowed.includes(current)) return null;
  if (compareEventEnvelopeVersion(current, from) < 0) {
    return `CONTRACT_VERSION ${current} is below the last release ${from}; versions only go up`;
  }
  const need =
    severity === 'breaking'
      ? `breaking changes since release ${from} need a MAJOR bump: CONTRACT_VERSION must be ${allowed[0]}`
      : severity === 'additive'
        ? `additive changes since release ${from} need a MINOR bump: CONTRACT_VERSION must be ${allowed.join(' or ')}`
        : `after release ${from}, CONTRACT_VERSION must be ${allowed.join(', ')}`;
  return `${need} (it is ${current})`;
}

interface ReleaseView {
  readonly version: string;
  readonly files: SnapshotSet;
}

/** Checks one release directory's shape; returns its problems. */
function checkReleaseShape(name: string, release: RecordedRelease): GateProblem[] {
  const problems: GateProblem[] = [];
  const problem = (message: string): void => {
    problems.push({ rule: 'release', message: `releases/${name}: ${message}` });
  };
  const indexText = release.files.get(SNAPSHOT_INDEX_FILE);
  const index = indexText === undefined ? undefined : parseSnapshotIndex(indexText);
  if (index === undefined) {
    problem(`no readable ${SNAPSHOT_INDEX_FILE}`);
    return problems;
  }
  if (index.contractVersion !== name) {
    problem(`${SNAPSHOT_INDEX_FILE} says contractVersion ${index.contractVersion}`);
  }
  const expected = new Set(index.procedures.map((procedure) => `${procedure}.json`));
  const present = new Set([...release.files.keys()].filter((f) => f !== SNAPSHOT_INDEX_FILE));
  for (const file of expected) if (!present.has(file)) problem(`${file} is missing`);
  for (const file of present) if (!expected.has(file)) problem(`${file} is not in the index`);
  for (const change of readContracts(release.files).unreadable) problem(change.message);
  return problems;
}

/** Runs every rule; `ok` when no problem was found. */
export function checkContractGate(input: ContractGateInput): ContractGate {
  const problems: GateProblem[] = [];
  const { currentVersion } = input;
  let changes: CompatChange[] = [];
  let summary = summarizeCompatChanges(changes);
  let allowedVersions: string[] = [];
  let lastRelease: string | null = null;

  // The working snapshots.
  const snapshots = diffSnapshotFiles(input.rendered, input.snapshots);
  if (!snapshots.upToDate) {
    const names = [...snapshots.missing, ...snapshots.extra, ...snapshots.different];
    problems.push({
      rule: 'snapshots',
      message: `snapshots/ is not what the code renders (${names.join(', ')}): run \`${SNAPSHOT_COMMAND}\` and commit the result`,
    });
  }

  // The changelog.
  let entries: readonly ChangelogEntry[] = [];
  if (input.changelog === null) {
    problems.push({ rule: 'changelog', message: `${CHANGELOG_FILE} is missing` });
  } else {
    const parsed = parseChangelog(input.changelog);
    entries = parsed.entries;
    for (const error of parsed.errors) {
      problems.push({ rule: 'changelog', message: `${CHANGELOG_FILE} ${error}` });
    }
  }
  const entryOf = new Map(entries.map((entry) => [entry.version, entry]));

  // The releases: shape, digest, and each one following from the one before.
  const releases: ReleaseView[] = [];
  for (const [name, release] of input.releases) {
    if (!isEventEnvelopeVersion(name)) {
      problems.push({
        rule: 'release',
        message: `releases/${name} is not named MAJOR.MINOR`,
      });
      continue;
    }
    problems.push(...checkReleaseShape(name, release));
    const entry = entryOf.get(name);
    if (entry === undefined) {
      problems.push({
        rule: 'changelog',
        message: `releases/${name} has no "## ${name}" entry in ${CHANGELOG_FILE}`,
      });
    } else if (entry.released === null) {
      problems.push({
        rule: 'changelog',
        message: `the ${CHANGELOG_FILE} entry for ${name} lacks its "Released:" line (releases are cut with \`${RELEASE_COMMAND}\`)`,
      });
    } else if (entry.released !== release.digest) {
      problems.push({
        rule: 'release',
        message: `releases/${name} changed since it was cut (digest ${release.digest}, ${CHANGELOG_FILE} records ${entry.released}); a release is never edited: restore it`,
      });
    }
    releases.push({ version: name, files: release.files });
  }
  releases.sort((a, b) => compareEventEnvelopeVersion(a.version, b.version));
  for (let i = 1; i < releases.length; i++) {
    const from = releases[i - 1]!;
    const to = releases[i]!;
    const severity = summarizeCompatChanges(classifySnapshotChanges(from.files, to.files)).severity;
    const allowed = allowedVersionsAfter(from.version, severity);
    if (!allowed.includes(to.version)) {
      problems.push({
        rule: 'release',
        message: `releases/${to.version} does not follow from releases/${from.version}: its ${severity} changes allow ${allowed.join(' or ')}`,
      });
    }
  }
  for (const entry of entries) {
    if (entry.released !== null && !input.releases.has(entry.version)) {
      problems.push({
        rule: 'release',
        message: `${CHANGELOG_FILE} records release ${entry.version}, but releases/${entry.version} is missing`,
      });
    }
  }

  if (!isEventEnvelopeVersion(currentVersion)) {
    problems.push({
      rule: 'version',
      message: `CONTRACT_VERSION ${currentVersion} is not MAJOR.MINOR`,
    });
    return finish();
  }

  const last = releases.at(-1) ?? null;
  const first = releases[0] ?? null;
  lastRelease = last?.version ?? null;

  // Changelog entries: only releases, history before the first release, and the current version.
  for (const entry of entries) {
    if (compareEventEnvelopeVersion(entry.version, currentVersion) > 0) {
      problems.push({
        rule: 'changelog',
        message: `${CHANGELOG_FILE} has an entry for ${entry.version}, above CONTRACT_VERSION ${currentVersion}`,
      });
    } else if (
      entry.released === null &&
      entry.version !== currentVersion &&
      first !== null &&
      compareEventEnvelopeVersion(entry.version, first.version) > 0
    ) {
      problems.push({
        rule: 'changelog',
        message: `${CHANGELOG_FILE} has an entry for ${entry.version}, which was never released and is not CONTRACT_VERSION ${currentVersion}: fold it into the ${currentVersion} entry`,
      });
    }
  }
  if (!input.releases.has(currentVersion) && !entryOf.has(currentVersion)) {
    problems.push({
      rule: 'changelog',
      message: `${CHANGELOG_FILE} has no "## ${currentVersion}" entry saying what changed in the unreleased CONTRACT_VERSION ${currentVersion}`,
    });
  }

  if (last === null) {
    problems.push({
      rule: 'release',
      message: `no release is recorded under releases/: there is nothing to compare with; cut the first one with \`${RELEASE_COMMAND}\``,
      noRelease: true,
    });
    return finish();
  }

  // The change since the last release, and the version it needs.
  changes = classifySnapshotChanges(last.files, input.rendered);
  summary = summarizeCompatChanges(changes);
  allowedVersions = allowedVersionsAfter(last.version, summary.severity);
  const versionProblem = explainVersion(
    last.version,
    currentVersion,
    summary.severity,
    allowedVersions,
  );
  if (versionProblem !== null) problems.push({ rule: 'version', message: versionProblem });

  // Clients of every earlier release of the current MAJOR must keep working.
  const currentMajor = majorOf(currentVersion);
  for (const release of releases) {
    if (release === last || majorOf(release.version) !== currentMajor) continue;
    const breaking = classifySnapshotChanges(release.files, input.rendered).filter(
      (change) => change.severity === 'breaking',
    );
    for (const change of breaking) {
      problems.push({
        rule: 'compatibility',
        message: `breaks clients of release ${release.version} (same MAJOR): ${formatCompatChange(change)}`,
      });
    }
  }
  return finish();

  function finish(): ContractGate {
    return {
      ok: problems.length === 0,
      currentVersion,
      lastRelease,
      currentReleased: input.releases.has(currentVersion),
      changes,
      summary,
      allowedVersions,
      snapshots,
      problems,
    };
  }
}

/** The human report of a gate run, as the CLI prints it. */
export function formatContractGate(gate: ContractGate): string[] {
  const lines: string[] = [];
  if (gate.lastRelease !== null) {
    for (const change of gate.changes) lines.push(formatCompatChange(change));
    const { severity, breaking, additive } = gate.summary;
    lines.push(
      severity === 'none'
        ? `contract ${gate.currentVersion} against release ${gate.lastRelease}: no compatibility-relevant change`
        : `contract ${gate.currentVersion} against release ${gate.lastRelease}: ${severity} (${breaking} breaking, ${additive} additive change(s)); allowed versions: ${gate.allowedVersions.join(', ')}`,
    );
  }
  if (gate.ok) {
    lines.push(
      `contract check passed: CONTRACT_VERSION ${gate.currentVersion}${gate.currentReleased ? ' (released)' : ' (unreleased, changelog entry present)'}, snapshots up to date`,
    );
    return lines;
  }
  lines.push(`contract check FAILED (${gate.problems.length} problem(s)):`);
  for (const problem of gate.problems) lines.push(`  [${problem.rule}] ${problem.message}`);
  if (gate.problems.some((p) => p.rule === 'version')) {
    lines.push(
      '  Set CONTRACT_VERSION in packages/contracts/src/version.ts, add its "## MAJOR.MINOR" entry to packages/contracts/CHANGELOG.md, then run `pnpm contracts:snapshot`.',
    );
  }
  return lines;
}
