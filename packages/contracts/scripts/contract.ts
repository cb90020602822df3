/**
 * The contract CLI (the rules live in src/compat/gate.ts):
 *   tsx scripts/contract.ts snapshot [--root <dir>]   regenerate snapshots/ from the code (always writes)
 *   tsx scripts/contract.ts check    [--root <dir>]   the release gate: exit 1 on any problem
 *   tsx scripts/contract.ts release  [--root <dir>]   record CONTRACT_VERSION as releases/<version>/
 * `--root` is a contracts directory (snapshots/, releases/, CHANGELOG.md); the default is this
 * package. The schemas always come from the code (WIRE_PROCEDURES, CONTRACT_VERSION).
 *
 * There is deliberately no flag that skips a rule: `snapshot` may write anything because the gate
 * is `check`, which compares with the last release, not with the snapshots just written.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import {
  CHANGELOG_FILE,
  CONTRACT_VERSION,
  WIRE_PROCEDURES,
  checkContractGate,
  classifySnapshotChanges,
  compareEventEnvelopeVersion,
  diffSnapshotFiles,
  formatCompatChange,
  formatContractGate,
  isEventEnvelopeVersion,
  markReleased,
  renderSnapshotFiles,
  summarizeCompatChanges,
  type ContractGate,
} from '../src/index.js';
import { CONTRACTS_ROOT, readContractFiles, releaseDigest } from '../src/node.js';

const USAGE = 'usage: contract.ts snapshot|check|release [--root <dir>]';

function shown(path: string): string {
  return relative(process.cwd(), path) || '.';
}

async function gateAt(
  root: string,
): Promise<{ gate: ContractGate; rendered: Map<string, string>; changelog: string | null }> {
  const files = await readContractFiles(root);
  const rendered = renderSnapshotFiles(WIRE_PROCEDURES, CONTRACT_VERSION);
  const gate = checkContractGate({
    currentVersion: CONTRACT_VERSION,
    rendered,
    snapshots: files.snapshots,
    releases: files.releases,
    changelog: files.changelog,
  });
  return { gate, rendered, changelog: files.changelog };
}

async function snapshot(root: string): Promise<number> {
  const dir = join(root, 'snapshots');
  const files = await readContractFiles(root);
  const rendered = renderSnapshotFiles(WIRE_PROCEDURES, CONTRACT_VERSION);
  const diff = diffSnapshotFiles(rendered, files.snapshots);
  await mkdir(dir, { recursive: true });
  for (const name of [...diff.missing, ...diff.different]) {
    await writeFile(join(dir, name), rendered.get(name)!, 'utf8');
    console.log(`wrote ${shown(join(dir, name))}`);
  }
  for (const name of diff.extra) {
    await rm(join(dir, name));
    console.log(`removed ${shown(join(dir, name))}`);
  }
  console.log(
    diff.upToDate
      ? `snapshots already up to date (contract version ${CONTRACT_VERSION})`
      : `snapshots written for contract version ${CONTRACT_VERSION}`,
  );
  // A hint only: `check` is the gate.
  const last = [...files.releases.keys()]
    .filter(isEventEnvelopeVersion)
    .sort(compareEventEnvelopeVersion)
    .at(-1);
  if (last !== undefined) {
    const changes = classifySnapshotChanges(files.releases.get(last)!.files, rendered);
    for (const change of changes) console.log(formatCompatChange(change));
    const { severity } = summarizeCompatChanges(changes);
    console.log(
      `since release ${last}: ${severity === 'none' ? 'no compatibility-relevant change' : `${severity} change(s)`}; \`pnpm contracts:check\` tells whether the version and changelog fit`,
    );
  }
  return 0;
}

async function check(root: string): Promise<number> {
  const { gate } = await gateAt(root);
  (gate.ok ? console.log : console.error)(formatContractGate(gate).join('\n'));
  return gate.ok ? 0 : 1;
}

async function release(root: string): Promise<number> {
  const { gate, rendered, changelog } = await gateAt(root);
  const blocking = gate.problems.filter((problem) => problem.noRelease !== true);
  if (blocking.length > 0) {
    console.error(formatContractGate(gate).join('\n'));
    console.error(`Not releasing ${CONTRACT_VERSION}: the contract check must pass first.`);
    return 1;
  }
  if (gate.currentReleased) {
    console.error(
      `Nothing to release: ${CONTRACT_VERSION} is already releases/${CONTRACT_VERSION}/ (raise CONTRACT_VERSION for a new release).`,
    );
    return 1;
  }
  if (changelog === null) {
    console.error(`Not releasing: ${CHANGELOG_FILE} is missing.`);
    return 1;
  }
  const dir = join(root, 'releases', CONTRACT_VERSION);
  await mkdir(dir, { recursive: true });
  for (const [name, content] of rendered) await writeFile(join(dir, name), content, 'utf8');
  const marked = markReleased(changelog, CONTRACT_VERSION, releaseDigest(rendered));
  await writeFile(join(root, CHANGELOG_FILE), marked, 'utf8');
  const after = await gateAt(root);
  if (!after.gate.ok) {
    console.error(formatContractGate(after.gate).join('\n'));
    return 1;
  }
  console.log(
    `released contract ${CONTRACT_VERSION} as ${shown(dir)} (${rendered.size} files); ${CHANGELOG_FILE} records its digest`,
  );
  return 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  let root = CONTRACTS_ROOT;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--root' && rest[i + 1] !== undefined) {
      root = resolve(rest[++i]!);
    } else {
      console.error(USAGE);
      return 2;
    }
  }
  switch (command) {
    case 'snapshot':
      return snapshot(root);
    case 'check':
      return check(root);
    case 'release':
      return release(root);
    default:
      console.error(USAGE);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
