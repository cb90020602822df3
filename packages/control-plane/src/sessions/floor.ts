/**
 * The version floor rule: NULL admits every version read-write; a client at or above
 * the floor is read-write; below it, read-only (never ejected). A malformed stored floor is an
 * error — it never silently admits.
 */
import {
  TetherError,
  compareEventEnvelopeVersion,
  isEventEnvelopeVersion,
} from '@tether/contracts';

export function assertValidFloor(floor: string | null): void {
  if (floor !== null && !isEventEnvelopeVersion(floor)) {
    throw new TetherError(
      'version.floor_malformed',
      "The session's minimum node version is malformed.",
    );
  }
}

export function isReadOnly(nodeVersion: string, floor: string | null): boolean {
  if (floor === null) return false;
  assertValidFloor(floor);
  if (!isEventEnvelopeVersion(nodeVersion)) {
    throw new TetherError('system.internal', 'A stored node version is malformed.');
  }
  return compareEventEnvelopeVersion(nodeVersion, floor) < 0;
}
