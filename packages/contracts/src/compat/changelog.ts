/**
 * The contract changelog (`packages/contracts/CHANGELOG.md`): hand-kept, in a strict format the
 * release gate reads.
 *
 *   # Anything (a title and preamble, before the first entry)
 *
 *   ## 2.0                       ← one entry per contract version, `## MAJOR.MINOR` exactly,
 *                                  newest first, each version once
 *   Released: sha256:<64 hex>    ← only on released versions, written by `pnpm contracts:release`
 *                                  as the entry's first line: the digest of releases/<version>/
 *   - What changed, one bullet   ← at least one `- ` line per entry
 *     per change (continuation lines and `###` subheadings are free text)
 *
 * Any other `## ` line, a `# ` line after the first entry, or a `Released:` line anywhere but
 * first in an entry is an error: a typo must not make an entry silently disappear.
 */
import { compareEventEnvelopeVersion, isEventEnvelopeVersion } from '../version.js';

export const CHANGELOG_FILE = 'CHANGELOG.md';

const RELEASED_PATTERN = /^Released: (sha256:[0-9a-f]{64})$/;

export interface ChangelogEntry {
  readonly version: string;
  /** The digest of the released snapshot set, or null for a version not released yet. */
  readonly released: string | null;
  /** The entry's text after the heading and the `Released:` line, trimmed. */
  readonly body: string;
  /** 1-based line number of the heading. */
  readonly line: number;
}

export interface Changelog {
  readonly entries: readonly ChangelogEntry[];
  /** Format errors, each naming its line; the gate fails on any. */
  readonly errors: readonly string[];
}

export function parseChangelog(text: string): Changelog {
  const lines = text.split(/\r?\n/);
  const errors: string[] = [];
  const entries: ChangelogEntry[] = [];
  let current: { version: string; line: number; released: string | null; body: string[] } | null =
    null;

  const finish = (): void => {
    if (current === null) return;
    const body = current.body.join('\n').trim();
    if (!current.body.some((l) => l.startsWith('- '))) {
      errors.push(
        `line ${current.line}: the entry for ${current.version} has no "- " bullet saying what changed`,
      );
    }
    entries.push({
      version: current.version,
      released: current.released,
      body,
      line: current.line,
    });
  };

  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.trimEnd();
    if (line.startsWith('## ') || line === '##') {
      finish();
      const version = line.slice(3).trim();
      if (!isEventEnvelopeVersion(version) || line !== `## ${version}`) {
        errors.push(
          `line ${lineNo}: "${line.slice(0, 80)}" is not an entry heading; write "## MAJOR.MINOR" exactly`,
        );
        current = null;
        return;
      }
      current = { version, line: lineNo, released: null, body: [] };
      return;
    }
    if (current === null) {
      if (line.startsWith('Released:')) {
        errors.push(`line ${lineNo}: "Released:" outside an entry`);
      }
      return; // the preamble is free text
    }
    if (/^# /.test(line)) {
      errors.push(
        `line ${lineNo}: a "# " heading inside the entries; entries are "## MAJOR.MINOR"`,
      );
      return;
    }
    if (line.startsWith('Released:')) {
      const match = RELEASED_PATTERN.exec(line);
      const first = current.body.every((l) => l.trim() === '') && current.released === null;
      if (match === null) {
        errors.push(`line ${lineNo}: write "Released: sha256:<64 lowercase hex>"`);
      } else if (!first) {
        errors.push(
          `line ${lineNo}: "Released:" must be the first line of the ${current.version} entry, once`,
        );
      } else {
        current.released = match[1]!;
      }
      return;
    }
    current.body.push(line);
  });
  finish();

  for (let i = 1; i < entries.length; i++) {
    const previous = entries[i - 1]!;
    const entry = entries[i]!;
    const order = compareEventEnvelopeVersion(previous.version, entry.version);
    if (order === 0) {
      errors.push(`line ${entry.line}: a second entry for ${entry.version}`);
    } else if (order < 0) {
      errors.push(
        `line ${entry.line}: ${entry.version} comes after ${previous.version}; entries go newest first`,
      );
    }
  }
  return { entries, errors };
}

/** The changelog with `Released: <digest>` inserted as the first line of `version`'s entry. */
export function markReleased(text: string, version: string, digest: string): string {
  const lines = text.split('\n');
  const index = lines.findIndex((line) => line.trimEnd() === `## ${version}`);
  if (index < 0) throw new Error(`CHANGELOG has no entry "## ${version}"`);
  return [...lines.slice(0, index + 1), '', `Released: ${digest}`, ...lines.slice(index + 1)].join(
    '\n',
  );
}
