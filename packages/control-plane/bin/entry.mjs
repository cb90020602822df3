// Which entry `tether-server` runs: the bundle (dist/server/tether-server.mjs, written by
// `pnpm --filter @tether/control-plane build`) when it is newer than every source it was built
// from, else the TypeScript sources through tsx's loader. A stale or missing bundle is never
// run: an edit to src/ takes effect at once, as before the bundle (docs/decisions/0022).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
export const BUNDLE = join(PACKAGE_DIR, 'dist', 'server', 'tether-server.mjs');
/** What the bundle is built from: this package's and the contracts' sources and manifests. */
export const SOURCES = [
  join(PACKAGE_DIR, 'src'),
  join(PACKAGE_DIR, 'package.json'),
  join(PACKAGE_DIR, '..', 'contracts', 'src'),
  join(PACKAGE_DIR, '..', 'contracts', 'package.json'),
];

/** The newest modification time (ms) under `paths` (files and directories, recursively). */
export function newestMtimeMs(paths) {
  let newest = 0;
  const visit = (path) => {
    let stat;
    try {
      stat = statSync(path);
    } catch {
      return; // absent: nothing newer
    }
    newest = Math.max(newest, stat.mtimeMs);
    if (stat.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  for (const path of paths) visit(path);
  return newest;
}

/** 'bundle' when `bundle` exists and is at least as new as every source, else 'source'. */
export function chooseEntry(bundle = BUNDLE, sources = SOURCES) {
  let built;
  try {
    built = statSync(bundle).mtimeMs;
  } catch {
    return 'source';
  }
  return built >= newestMtimeMs(sources) ? 'bundle' : 'source';
}
