/** Enrollment keys: create one (shown once, with Copy), list them with uses and expiry, revoke. */
import type { EnrollmentKeyView } from '@tether/client';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState, type FormEvent } from 'react';
import { ConfirmDialog } from '../components/Dialog.js';
import { Secret } from '../components/Secret.js';
import { Failed, Loading } from '../components/Status.js';
import { errorMessage } from '../errors.js';
import { dateTime, parseLabels } from '../format.js';
import { useTRPC } from '../trpc.js';

const EXPIRY = [
  { label: '1 hour', seconds: 3600 },
  { label: '24 hours', seconds: 24 * 3600 },
  { label: '7 days', seconds: 7 * 24 * 3600 },
  { label: '30 days', seconds: 30 * 24 * 3600 },
  { label: '365 days', seconds: 365 * 24 * 3600 },
];

export function KeysPage() {
  const trpc = useTRPC();
  const keys = useQuery(trpc.enrollment.listKeys.queryOptions());
  const [revoking, setRevoking] = useState<EnrollmentKeyView | null>(null);
  const queryClient = useQueryClient();
  const revoke = useMutation(
    trpc.enrollment.revokeKey.mutationOptions({
      onSuccess: () => {
        setRevoking(null);
        void queryClient.invalidateQueries(trpc.enrollment.listKeys.pathFilter());
      },
    }),
  );
  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">Enrollment keys</h1>
      <p className="muted">
        A device enrolls itself with a key: <code>tether-agent enroll --key tek_…</code>. A one-time
        key enrolls one device; a reusable key enrolls many until it expires or is revoked. Labels
        given here are set on every node it enrolls.
      </p>
      <CreateKey />
      {revoke.error !== null && (
        <p role="alert" className="error">
          {errorMessage(revoke.error)}
        </p>
      )}
      <div className="panel">
        <h2>Keys</h2>
        {keys.isPending ? (
          <Loading what="keys" />
        ) : keys.isError ? (
          <Failed error={keys.error} retry={() => void keys.refetch()} />
        ) : keys.data.items.length === 0 ? (
          <p className="muted">No keys yet.</p>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Key id</th>
                  <th scope="col">State</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Uses</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Labels</th>
                  <th scope="col">
                    <span className="skip">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.data.items.map((k) => (
                  <tr key={k.keyId} data-key-id={k.keyId}>
                    <td>
                      <code>{k.keyId.slice(0, 8)}…</code>
                    </td>
                    <td data-testid="key-state">{k.state}</td>
                    <td>{k.reusable ? 'reusable' : 'one-time'}</td>
                    <td>
                      {k.useCount}
                      {k.lastUsedAt !== null && (
                        <span className="muted"> (last {dateTime(k.lastUsedAt)})</span>
                      )}
                    </td>
                    <td>{dateTime(k.expiresAt)}</td>
                    <td>
                      {Object.entries(k.labels).map(([key, v]) => (
                        <span key={key} className="badge">
                          {key}={v}
                        </span>
                      ))}
                    </td>
                    <td>
                      {k.state === 'active' && (
                        <button
                          type="button"
                          className="danger"
                          aria-describedby={`key-${k.keyId}`}
                          onClick={() => setRevoking(k)}
                        >
                          Revoke
                        </button>
                      )}
                      <span id={`key-${k.keyId}`} hidden>
                        key {k.keyId}
                      </span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
      {revoking !== null && (
        <ConfirmDialog
          title="Revoke this enrollment key?"
          busy={revoke.isPending}
          onCancel={() => setRevoking(null)}
          onConfirm={() => revoke.mutate({ keyId: revoking.keyId })}
        >
          <p>
            Key <code>{revoking.keyId}</code> will enroll no more devices. Nodes it already enrolled
            keep working.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function CreateKey() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const id = useId();
  const [reusable, setReusable] = useState(false);
  const [expiry, setExpiry] = useState(24 * 3600);
  const [labels, setLabels] = useState('');
  const [invalid, setInvalid] = useState<string | null>(null);
  const [created, setCreated] = useState<{ key: string; expiresAt: Date } | null>(null);
  const create = useMutation(
    trpc.enrollment.createKey.mutationOptions({
      onSuccess: (out) => {
        setCreated({ key: out.enrollmentKey, expiresAt: out.expiresAt });
        void queryClient.invalidateQueries(trpc.enrollment.listKeys.pathFilter());
      },
    }),
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = parseLabels(labels);
    if (typeof parsed === 'string') {
      setInvalid(`Labels: ${parsed}.`);
      return;
    }
    setInvalid(null);
    setCreated(null);
    create.mutate({
      reusable,
      expiresInSeconds: expiry,
      ...(Object.keys(parsed).length > 0 ? { labels: parsed } : {}),
    });
  };
  const error = invalid ?? (create.error !== null ? errorMessage(create.error) : null);
  return (
    <form className="panel" aria-label="Create enrollment key" onSubmit={submit}>
      <h2>New key</h2>
      <div className="form-row">
        <label htmlFor={`${id}-reusable`} className="checkbox">
          <input
            id={`${id}-reusable`}
            type="checkbox"
            checked={reusable}
            onChange={(e) => setReusable(e.target.checked)}
          />{' '}
          Reusable
        </label>
        <div className="field">
          <label htmlFor={`${id}-expiry`}>Expires in</label>
          <select
            id={`${id}-expiry`}
            value={expiry}
            onChange={(e) => setExpiry(Number(e.target.value))}
          >
            {EXPIRY.map((o) => (
              <option key={o.seconds} value={o.seconds}>
                {o.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-labels`}>Labels</label>
          <input
            id={`${id}-labels`}
            value={labels}
            placeholder="site=lab, rack=3"
            onChange={(e) => setLabels(e.target.value)}
          />
        </div>
        <button type="submit" disabled={create.isPending}>
          Create key
        </button>
      </div>
      {error !== null && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {created !== null && (
        <>
          <p>New key (expires {dateTime(created.expiresAt)}):</p>
          <Secret value={created.key} testId="new-enrollment-key" label="New enrollment key" />
        </>
      )}
    </form>
  );
}
