/** The overall verdict over a list of changes, and the contract-version rule that follows from it. */
import {
  compareEventEnvelopeVersion,
  isEventEnvelopeVersion,
  parseEventEnvelopeVersion,
} from '../version.js';
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

export interface VersionBumpCheck {
  readonly ok: boolean;
  readonly message: string;
}

/**
 * Whether `current` (CONTRACT_VERSION) is far enough above `recorded` (the version the snapshots
 * were written with) for the changes: a MAJOR bump needs a higher MAJOR, a MINOR bump a higher
 * MAJOR.MINOR, and no version may ever go down.
 */
export function checkContractVersionBump(
  recorded: string,
  current: string,
  bump: VersionBump,
): VersionBumpCheck {
  if (!isEventEnvelopeVersion(recorded)) {
    return {
      ok: false,
      message: `recorded contract version ${JSON.stringify(recorded)} is not MAJOR.MINOR`,
    };
  }
  if (!isEventEnvelopeVersion(current)) {
    return { ok: false, message: `CONTRACT_VERSION ${JSON.stringify(current)} is not MAJOR.MINOR` };
  }
  const order = compareEventEnvelopeVersion(current, recorded);
  if (order < 0) {
    return {
      ok: false,
      message: `CONTRACT_VERSION ${current} is lower than the recorded ${recorded}; versions only go up`,
    };
  }
  const was = parseEventEnvelopeVersion(recorded);
  const now = parseEventEnvelopeVersion(current);
  if (bump === 'major' && now.major <= was.major) {
    return {
      ok: false,
      message: `breaking changes need a MAJOR bump: CONTRACT_VERSION ${current} must have a MAJOR above ${recorded} (e.g. ${was.major + 1n}.0)`,
    };
  }
  if (bump === 'minor' && order <= 0) {
    return {
      ok: false,
      message: `additive changes need a MINOR bump: CONTRACT_VERSION ${current} must be above ${recorded} (e.g. ${was.major}.${was.minor + 1n})`,
    };
  }
  return {
    ok: true,
    message:
      bump === 'none'
        ? `CONTRACT_VERSION ${current} (recorded ${recorded}); no bump needed`
        : `CONTRACT_VERSION ${current} carries the ${bump.toUpperCase()} bump over ${recorded}`,
  };
}
