/**
 * `@tether/contracts/node`: the contract's files on disk, for the CLI and for tests that read the
 * recorded releases (Node only; the package's main entry stays free of `node:` imports).
 *
 * Layout under the package root: `snapshots/` (the working snapshot set), `releases/<MAJOR.MINOR>/`
 * (one snapshot set per released version, never edited) and `CHANGELOG.md`.
 */
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHANGELOG_FILE } from './compat/changelog.js';
import { canonicalJson } from './resume.js';
import type { RecordedRelease } from './compat/gate.js';
import type { SnapshotSet } from './compat/snapshots.js';

/** This package's root directory. */
export const CONTRACTS_ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface ContractFiles {
  readonly snapshots: Map<string, string>;
  readonly releases: Map<string, RecordedRelease>;
  readonly changelog: string | null;
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/** The `.json` files of a directory (name → content); empty when it does not exist. */
export async function readSnapshotDir(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (isMissing(error)) return files;
    throw error;
  }
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    files.set(name, await readFile(join(dir, name), 'utf8'));
  }
  return files;
}

/**
 * `sha256:<hex>` over a snapshot set: every file name and content, in name order, each
 * length-prefixed so that no two different sets hash alike.
 */
export function releaseDigest(files: SnapshotSet): string {
  const hash = createHash('sha256');
  for (const name of [...files.keys()].sort()) {
    const content = Buffer.from(files.get(name)!, 'utf8');
    hash.update(`${Buffer.byteLength(name)}:${name}\n${content.length}:`);
    hash.update(content);
    hash.update('\n');
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Every release directory under `releasesDir`, by name, with its files and digest. */
export async function readReleases(releasesDir: string): Promise<Map<string, RecordedRelease>> {
  const releases = new Map<string, RecordedRelease>();
  let entries: Dirent[];
  try {
    entries = await readdir(releasesDir, { withFileTypes: true });
  } catch (error) {
    if (isMissing(error)) return releases;
    throw error;
  }
  for (const entry of entries.filter((e) => e.isDirectory())) {
    const files = await readSnapshotDir(join(releasesDir, entry.name));
    releases.set(entry.name, { files, digest: releaseDigest(files) });
  }
  return releases;
}

/** Reads snapshots/, releases/ and CHANGELOG.md under a contracts root. */
export async function readContractFiles(root: string = CONTRACTS_ROOT): Promise<ContractFiles> {
  let changelog: string | null;
  try {
    changelog = await readFile(join(root, CHANGELOG_FILE), 'utf8');
  } catch (error) {
    if (!isMissing(error)) throw error;
    changelog = null;
  }
  return {
    snapshots: await readSnapshotDir(join(root, 'snapshots')),
    releases: await readReleases(join(root, 'releases')),
    changelog,
  };
}

/**
 * SHA-256 (lowercase hex) of `canonicalJson(capabilities)`: the digest a node claims in its
 * resume header and the server stores with the attachment (Node's hash; other clients hash the
 * same canonical text with their own).
 */
export function capabilitiesDigest(capabilities: unknown): string {
  return createHash('sha256').update(canonicalJson(capabilities), 'utf8').digest('hex');
}
