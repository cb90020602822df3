/**
 * The pairing inbox: pending requests (they appear and leave live: pairing events invalidate the
 * list), each with the code its device shows; approve or reject one, or approve by typing the
 * code the device shows.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { Failed, Loading } from '../components/Status.js';
import { errorMessage } from '../errors.js';
import { ago, dateTime } from '../format.js';
import { useNow } from '../hooks.js';
import { useTRPC } from '../trpc.js';

export function PairingPage() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const now = useNow();
  const pending = useQuery(trpc.pairing.list.queryOptions({ state: 'pending' }));
  const [outcome, setOutcome] = useState<{ text: string; nodeId?: string | null } | null>(null);
  const onDecided = () => {
    void queryClient.invalidateQueries(trpc.pairing.list.pathFilter());
    void queryClient.invalidateQueries(trpc.node.list.pathFilter());
    void queryClient.invalidateQueries(trpc.node.counts.pathFilter());
  };
  const approve = useMutation(
    trpc.pairing.approve.mutationOptions({
      onSuccess: (out) => {
        setOutcome({ text: `Request ${out.requestId} ${out.state}.` });
        onDecided();
      },
    }),
  );
  const reject = useMutation(
    trpc.pairing.reject.mutationOptions({
      onSuccess: (out) => {
        setOutcome({ text: `Request ${out.requestId} ${out.state}.` });
        onDecided();
      },
    }),
  );
  const failure = approve.error ?? reject.error;
  const busy = approve.isPending || reject.isPending;
  return (
    <section aria-labelledby="pairing-title">
      <h1 id="pairing-title">Pairing</h1>
      <p className="muted">
        A device started with <code>tether-agent pair</code> asks to join and shows a code. Approve
        its request when the code here matches the one on the device, or type the device&apos;s code
        below.
      </p>
      <ApproveByCode
        onDecided={(text) => {
          setOutcome({ text });
          onDecided();
        }}
      />
      {failure !== null && (
        <p role="alert" className="error">
          {errorMessage(failure)}
        </p>
      )}
      {outcome !== null && (
        <p role="status">
          {outcome.text} <Link href="/">See the fleet</Link>.
        </p>
      )}
      <div className="panel">
        <h2>Pending requests</h2>
        {pending.isPending ? (
          <Loading what="pending requests" />
        ) : pending.isError ? (
          <Failed error={pending.error} retry={() => void pending.refetch()} />
        ) : pending.data.items.length === 0 ? (
          <p className="muted" data-testid="pairing-empty">
            No pending requests. New ones appear here as devices ask.
          </p>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Code</th>
                  <th scope="col">Device</th>
                  <th scope="col">Type / platform</th>
                  <th scope="col">Asked</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Decision</th>
                </tr>
              </thead>
              <tbody>
                {pending.data.items.map((r) => (
                  <tr key={r.requestId} data-request-id={r.requestId}>
                    <td>
                      <code data-testid="pairing-code">{r.pairingCode}</code>
                    </td>
                    <td>
                      {r.name}
                      {r.requestedNodeId !== null && (
                        <>
                          <br />
                          <span className="muted">as {r.requestedNodeId}</span>
                        </>
                      )}
                    </td>
                    <td>
                      {r.nodeType} / {r.platform ?? '—'}
                    </td>
                    <td title={dateTime(r.createdAt)}>{ago(r.createdAt, now)}</td>
                    <td>{dateTime(r.expiresAt)}</td>
                    <td>
                      <div className="actions">
                        <button
                          type="button"
                          disabled={busy}
                          aria-label="Approve"
                          aria-describedby={`code-${r.requestId}`}
                          onClick={() => approve.mutate({ requestId: r.requestId })}
                        >
                          Approve
                        </button>
                        <button
                          type="button"
                          className="secondary"
                          disabled={busy}
                          onClick={() => reject.mutate({ requestId: r.requestId })}
                        >
                          Reject
                        </button>
                        <span id={`code-${r.requestId}`} hidden>
                          request {r.pairingCode} from {r.name}
                        </span>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
    </section>
  );
}

function ApproveByCode({ onDecided }: { onDecided: (text: string) => void }) {
  const trpc = useTRPC();
  const id = useId();
  const [code, setCode] = useState('');
  const approve = useMutation(
    trpc.pairing.approve.mutationOptions({
      onSuccess: (out) => {
        setCode('');
        onDecided(`Request ${out.requestId} ${out.state}.`);
      },
    }),
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (code.trim() === '') return;
    approve.mutate({ pairingCode: code.trim() });
  };
  return (
    <form className="panel form-row" aria-label="Approve by code" onSubmit={submit}>
      <div className="field">
        <label htmlFor={`${id}-code`}>Pairing code</label>
        <input
          id={`${id}-code`}
          value={code}
          autoComplete="off"
          spellCheck={false}
          placeholder="ABCD-1234"
          onChange={(e) => setCode(e.target.value)}
        />
      </div>
      <button type="submit" disabled={approve.isPending || code.trim() === ''}>
        Approve code
      </button>
      {approve.error !== null && (
        <p role="alert" className="error">
          {errorMessage(approve.error)}
        </p>
      )}
    </form>
  );
}
