/**
 * Fails the run at once, in one line, when something the browser tests need is missing: the
 * browser they drive, or the dashboard build the server serves (turbo builds it before this
 * package's test; run by hand: `pnpm --filter @tether/dashboard build`).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromiumMissing } from './chromium.js';

const BUILT_INDEX = fileURLToPath(new URL('../../dist/index.html', import.meta.url));

export default function setup(): void {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  if (!existsSync(BUILT_INDEX)) {
    throw new Error(
      'The dashboard is not built (dist/index.html missing): run `pnpm --filter @tether/dashboard build` first',
    );
  }
}
