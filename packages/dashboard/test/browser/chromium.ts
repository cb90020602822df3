/** Where the browser the tests drive is (Debian's Chromium), and one clear line if it is not. */
import { existsSync } from 'node:fs';

export const CHROMIUM_PATH = process.env.TETHER_CHROMIUM_PATH ?? '/usr/bin/chromium';

export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  return `Chromium not found at ${CHROMIUM_PATH}: install it with \`apt-get install -y chromium\` (or set TETHER_CHROMIUM_PATH)`;
}
