/**
 * dist/ must be the build of the current sources before the package is packed: turbo builds it
 * first (`test` depends on `build`); a direct `vitest run` rebuilds it here when it is missing
 * or older than any input.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const INPUTS = [
  join(root, 'src'),
  join(root, '..', 'contracts', 'src'),
  join(root, 'scripts'),
  join(root, 'package.json'),
  join(root, 'tsconfig.json'),
  join(root, 'tsconfig.build.json'),
];

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(
    stat.mtimeMs,
    ...readdirSync(path).map((entry) => newestMtime(join(path, entry))),
  );
}

function builtAt(): number {
  try {
    return Math.min(
      statSync(join(root, 'dist', 'index.js')).mtimeMs,
      statSync(join(root, 'dist', 'index.d.ts')).mtimeMs,
    );
  } catch {
    return -1;
  }
}

export default function setup(): void {
  if (builtAt() >= Math.max(...INPUTS.map(newestMtime))) return;
  const built = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], {
    stdio: 'inherit',
  });
  if (built.status !== 0) throw new Error('@tether/client: the build failed');
}
