/**
 * Contract snapshot CLI (the logic lives in src/compat):
 *   tsx scripts/snapshots.ts write [--force] [--dir <path>]   regenerate snapshots/*.json
 *   tsx scripts/snapshots.ts check [--dir <path>]             fail when the snapshots are stale or the version bump is missing
 * `--dir` points at another snapshot directory (the tests use it); the default is ../snapshots.
 *
 * `write` refuses to record a breaking (or additive) change while CONTRACT_VERSION lacks the
 * MAJOR (or MINOR) bump it needs, since that would silently launder the change; `--force` overrides.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CONTRACT_VERSION,
  WIRE_PROCEDURES,
  checkSnapshotFiles,
  formatCompatChange,
  formatSnapshotCheck,
  renderSnapshotFiles,
} from '../src/index.js';

const DEFAULT_SNAPSHOT_DIR = fileURLToPath(new URL('../snapshots/', import.meta.url));
const USAGE = 'usage: snapshots.ts write [--force] [--dir <path>] | check [--dir <path>]';

async function readSnapshotDir(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return files;
    throw error;
  }
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    files.set(name, await readFile(join(dir, name), 'utf8'));
  }
  return files;
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  let force = false;
  let dir = DEFAULT_SNAPSHOT_DIR;
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    if (flag === '--force' && command === 'write') {
      force = true;
    } else if (flag === '--dir' && rest[i + 1] !== undefined) {
      dir = resolve(rest[++i]!);
    } else {
      console.error(USAGE);
      return 2;
    }
  }
  if (command !== 'write' && command !== 'check') {
    console.error(USAGE);
    return 2;
  }
  const expected = renderSnapshotFiles(WIRE_PROCEDURES, CONTRACT_VERSION);
  const actual = await readSnapshotDir(dir);
  const check = checkSnapshotFiles(expected, actual, CONTRACT_VERSION);
  const shown = relative(process.cwd(), dir) || '.';

  if (command === 'check') {
    const lines = formatSnapshotCheck(check, shown);
    (check.ok ? console.log : console.error)(lines.join('\n'));
    return check.ok ? 0 : 1;
  }

  if (check.versionCheck !== null && !check.versionCheck.ok && !force) {
    console.error(formatSnapshotCheck(check, shown).join('\n'));
    console.error('Not writing: raise CONTRACT_VERSION first (or pass --force to record anyway).');
    return 1;
  }
  await mkdir(dir, { recursive: true });
  for (const name of [...check.missing, ...check.different]) {
    await writeFile(join(dir, name), expected.get(name)!, 'utf8');
    console.log(`wrote ${join(shown, name)}`);
  }
  for (const name of check.extra) {
    await rm(join(dir, name));
    console.log(`removed ${join(shown, name)}`);
  }
  for (const change of check.changes) console.log(formatCompatChange(change));
  console.log(
    check.upToDate
      ? `snapshots already up to date (contract version ${CONTRACT_VERSION})`
      : `snapshots written for contract version ${CONTRACT_VERSION}${check.initial ? ' (first snapshot)' : ` (${check.summary.severity} change)`}`,
  );
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
