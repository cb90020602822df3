/**
 * Sign-in: a participant token, checked with one cheap authenticated call before it is kept
 * (sessionStorage: this tab only).
 */
import { isTetherError } from '@tether/client';
import { useId, useState, type FormEvent } from 'react';
import { errorMessage } from '../errors.js';
import { createApiClient } from '../trpc.js';

function refusal(error: unknown): string {
  if (isTetherError(error, 'auth.unauthenticated')) {
    return 'This token is not accepted: it is wrong, revoked or expired, or its participant is suspended.';
  }
  if (isTetherError(error, 'auth.forbidden') || isTetherError(error, 'auth.principal_mismatch')) {
    return 'This is not a participant token (a node token cannot sign in here).';
  }
  return errorMessage(error);
}

export function SignIn({
  notice,
  onSignedIn,
}: {
  notice: string | null;
  onSignedIn: (token: string) => void;
}) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const tokenId = useId();
  const helpId = useId();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const value = token.trim();
    if (value === '') {
      setError('Enter a participant token.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      // system.info names the caller behind a valid token (null otherwise): no failed request.
      const { caller } = await createApiClient(value).system.info.query();
      if (caller === null) {
        setError(
          'This token is not accepted: it is wrong, revoked or expired, or its participant is suspended.',
        );
        setBusy(false);
        return;
      }
      if (caller.kind !== 'participant') {
        setError('This is a node token; sign in with a participant token.');
        setBusy(false);
        return;
      }
      onSignedIn(value);
    } catch (err) {
      setError(refusal(err));
      setBusy(false);
    }
  };

  const shown = error ?? notice;
  return (
    <main className="signin" id="main">
      <h1>Tether</h1>
      <form aria-label="Sign in" onSubmit={(e) => void submit(e)} noValidate>
        <label htmlFor={tokenId}>Token</label>
        <input
          id={tokenId}
          name="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          aria-describedby={helpId}
          aria-invalid={error !== null}
          value={token}
          onChange={(e) => setToken(e.target.value)}
          autoFocus
        />
        {shown !== null && (
          <p role="alert" className="error">
            {shown}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <div id={helpId} className="help">
        <h2>How to get a token</h2>
        <p>
          On first start the server creates an admin and writes its token to{' '}
          <code>first-admin-token</code> in its data directory (
          <code>.tether/first-admin-token</code> by default); the server log names the file.
        </p>
        <p>
          Or create one: <code>pnpm tether-server token create --admin --name you</code>.
        </p>
        <p>The token is kept in this browser tab only and forgotten when you sign out.</p>
      </div>
    </main>
  );
}
