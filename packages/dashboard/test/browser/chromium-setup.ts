/** Fails the run at once, in one line, when the browser the tests drive is not installed. */
import { chromiumMissing } from './chromium.js';

export default function setup(): void {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
}
