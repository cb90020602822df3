import { CREDENTIAL_END_REASONS, TetherError, WS_CLOSE } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { terminationFor } from '../src/termination.js';

describe('terminationFor: when a lost connection ends the node for good', () => {
  it('the terminal close code ends it as credential_revoked, with the close code', () => {
    const reason = terminationFor(
      { kind: 'closed', closeCode: WS_CLOSE.CREDENTIAL_REVOKED, closeReason: 'token rotated' },
      undefined,
    );
    expect(reason).toMatchObject({ code: 'credential_revoked', closeCode: 4401 });
    expect(reason?.message).toMatch(/\(token rotated\); not reconnecting/);
  });

  it.each(CREDENTIAL_END_REASONS)(
    'a call refused because the credential ended (%s) ends it the same way, before the close arrives',
    (why) => {
      const error = new TetherError('auth.unauthenticated', 'The credential ended.', {
        reason: why,
      });
      const reason = terminationFor(
        { kind: 'call_failed', code: error.code, message: error.message },
        error,
      );
      expect(reason).toMatchObject({ code: 'credential_revoked', error });
      expect(reason?.closeCode).toBeUndefined();
    },
  );

  it('the commands stream or a beat refused the same way (the error rides on the loss) ends it the same way', () => {
    const error = new TetherError('auth.unauthenticated', 'The node token was rotated.', {
      reason: 'token_rotated',
    });
    expect(
      terminationFor(
        { kind: 'call_failed', code: error.code, message: error.message, error },
        undefined,
      ),
    ).toMatchObject({ code: 'credential_revoked', error });
  });

  it('auth.unauthenticated without a credential-end reason keeps its own code', () => {
    const error = new TetherError('auth.unauthenticated', 'Unknown token.');
    expect(
      terminationFor({ kind: 'call_failed', code: error.code, message: error.message }, error),
    ).toMatchObject({ code: 'auth.unauthenticated' });
    const odd = new TetherError('auth.unauthenticated', 'Odd.', { reason: 'because' });
    expect(
      terminationFor({ kind: 'call_failed', code: odd.code, message: odd.message }, odd),
    ).toMatchObject({ code: 'auth.unauthenticated' });
  });

  it('a retryable failure, a normal close or a dropped socket is not terminal', () => {
    const busy = new TetherError('system.unavailable', 'Draining.');
    expect(
      terminationFor({ kind: 'call_failed', code: busy.code, message: busy.message }, busy),
    ).toBeNull();
    expect(
      terminationFor({ kind: 'closed', closeCode: 1001, closeReason: '' }, undefined),
    ).toBeNull();
    expect(
      terminationFor({ kind: 'closed', closeCode: undefined, closeReason: '' }, undefined),
    ).toBeNull();
    expect(terminationFor({ kind: 'dropped', reason: 'no pong' }, undefined)).toBeNull();
  });
});
