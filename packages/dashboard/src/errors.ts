/** Turning a call's error into words for a person. */
import { isTetherError } from '@tether/client';

/** The token is unknown, expired, revoked, or its participant suspended: sign in again. */
export function isCredentialError(error: unknown): boolean {
  return isTetherError(error, 'auth.unauthenticated');
}

export function errorMessage(error: unknown): string {
  if (isTetherError(error)) return error.message;
  if (error instanceof Error) {
    if (error.message === 'Failed to fetch' || error.name === 'TypeError') {
      return 'The server cannot be reached. Check that it is running, then retry.';
    }
    return error.message;
  }
  return String(error);
}
