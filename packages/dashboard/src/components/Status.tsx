/** Loading and error states every page shows the same way. */
import { errorMessage } from '../errors.js';

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

export function Failed({ error, retry }: { error: unknown; retry?: () => void }) {
  return (
    <div role="alert" className="error">
      <p>{errorMessage(error)}</p>
      {retry !== undefined && (
        <button type="button" className="secondary" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Presence({
  state,
  since,
}: {
  state: 'online' | 'degraded' | 'offline';
  since?: string | undefined;
}) {
  return (
    <span className="presence" data-testid="presence" data-presence={state}>
      <span className="dot" aria-hidden="true" />
      {state}
      {since !== undefined && <span className="muted"> {since}</span>}
    </span>
  );
}
