/** The overall verdict over a list of changes, and the contract-version rule that follows from it. */
import type { CompatChange, CompatOverallSeverity, CompatSummary, VersionBump } from './types.js';

/** `breaking` needs a MAJOR bump, `additive` a MINOR bump, `none` no bump. */
export function versionBumpFor(severity: CompatOverallSeverity): VersionBump {
  return severity === 'breaking' ? 'major' : severity === 'additive' ? 'minor' : 'none';
}

export function summarizeCompatChanges(changes: readonly CompatChange[]): CompatSummary {
  const breaking = changes.filter((change) => change.severity === 'breaking').length;
  const additive = changes.filter((change) => change.severity === 'additive').length;
  const severity: CompatOverallSeverity =
    breaking > 0 ? 'breaking' : additive > 0 ? 'additive' : 'none';
  return { severity, bump: versionBumpFor(severity), additive, breaking };
}
