/** Sessions: the ones you may see (paged), and a form to create one. */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useId, useState, type FormEvent } from 'react';
import { Link, useLocation } from 'wouter';
import { Failed, Loading } from '../components/Status.js';
import { errorMessage } from '../errors.js';
import { dateTime } from '../format.js';
import { useTRPC } from '../trpc.js';
import { useSessionPages } from './paging.js';

export function SessionsPage() {
  const sessions = useSessionPages(100);
  const items = sessions.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section aria-labelledby="sessions-title">
      <h1 id="sessions-title">Sessions</h1>
      <CreateSession />
      {sessions.isPending ? (
        <Loading what="sessions" />
      ) : sessions.isError ? (
        <Failed error={sessions.error} retry={() => void sessions.refetch()} />
      ) : items.length === 0 ? (
        <p className="muted">No sessions yet.</p>
      ) : (
        <div className="panel table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Minimum node version</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {items.map((s) => (
                <tr key={s.sessionId} data-session-id={s.sessionId}>
                  <td>
                    <Link href={`/sessions/${s.sessionId}`}>{s.name}</Link>
                  </td>
                  <td>{s.state}</td>
                  <td>{s.minNodeVersion ?? 'none'}</td>
                  <td>{dateTime(s.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {sessions.hasNextPage && (
            <button
              type="button"
              className="secondary"
              disabled={sessions.isFetchingNextPage}
              onClick={() => void sessions.fetchNextPage()}
            >
              Load more
            </button>
          )}
        </div>
      )}
    </section>
  );
}

function CreateSession() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [, navigate] = useLocation();
  const id = useId();
  const [name, setName] = useState('');
  const create = useMutation(
    trpc.session.create.mutationOptions({
      onSuccess: (session) => {
        void queryClient.invalidateQueries(trpc.session.list.pathFilter());
        navigate(`/sessions/${session.sessionId}`);
      },
    }),
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim() === '') return;
    create.mutate({ name: name.trim() });
  };
  return (
    <form className="panel form-row" aria-label="Create session" onSubmit={submit}>
      <div className="field">
        <label htmlFor={`${id}-name`}>Session name</label>
        <input id={`${id}-name`} value={name} onChange={(e) => setName(e.target.value)} />
      </div>
      <button type="submit" disabled={create.isPending || name.trim() === ''}>
        Create session
      </button>
      {create.error !== null && (
        <p role="alert" className="error">
          {errorMessage(create.error)}
        </p>
      )}
    </form>
  );
}
