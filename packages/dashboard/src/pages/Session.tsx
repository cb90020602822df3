/**
 * One session: its roster with both health axes (the attachment's state and the node's presence)
 * and read-only rows, the version floor form, and its members with their roles.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { Failed, Loading, Presence } from '../components/Status.js';
import { errorMessage } from '../errors.js';
import { ago, dateTime, percent } from '../format.js';
import { useNow } from '../hooks.js';
import { useTRPC } from '../trpc.js';

export function SessionPage({ sessionId }: { sessionId: string }) {
  const trpc = useTRPC();
  const session = useQuery(trpc.session.get.queryOptions({ sessionId }));
  if (session.isPending) return <Loading what="the session" />;
  if (session.isError) {
    return (
      <section>
        <h1>Session</h1>
        <Failed error={session.error} retry={() => void session.refetch()} />
        <p>
          <Link href="/sessions">Back to sessions</Link>
        </p>
      </section>
    );
  }
  const s = session.data;
  return (
    <section aria-labelledby="session-title">
      <p>
        <Link href="/sessions">← Sessions</Link>
      </p>
      <h1 id="session-title">{s.name}</h1>
      <div className="panel">
        <dl className="facts">
          <dt>Session id</dt>
          <dd>
            <code>{s.sessionId}</code>
          </dd>
          <dt>State</dt>
          <dd>{s.state}</dd>
          <dt>Minimum node version</dt>
          <dd data-testid="floor">{s.minNodeVersion ?? 'none'}</dd>
          <dt>Created</dt>
          <dd>{dateTime(s.createdAt)}</dd>
        </dl>
      </div>
      <Roster sessionId={sessionId} />
      <RaiseFloor sessionId={sessionId} current={s.minNodeVersion} />
      <Members sessionId={sessionId} />
    </section>
  );
}

function Roster({ sessionId }: { sessionId: string }) {
  const trpc = useTRPC();
  const now = useNow();
  const roster = useQuery(trpc.runtimenode.roster.queryOptions({ sessionId }));
  return (
    <div className="panel">
      <h2>Roster</h2>
      {roster.isPending ? (
        <Loading what="the roster" />
      ) : roster.isError ? (
        <Failed error={roster.error} retry={() => void roster.refetch()} />
      ) : roster.data.nodes.length === 0 ? (
        <p className="muted">No node has attached to this session.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Node</th>
                <th scope="col">Attachment state</th>
                <th scope="col">Presence</th>
                <th scope="col">Client version</th>
                <th scope="col">Capabilities</th>
                <th scope="col">CPU</th>
                <th scope="col">Last heartbeat</th>
              </tr>
            </thead>
            <tbody>
              {roster.data.nodes.map((n) => (
                <tr key={n.nodeId} data-node-id={n.nodeId}>
                  <td>
                    <Link href={`/nodes/${encodeURIComponent(n.nodeId)}`}>{n.nodeId}</Link>
                  </td>
                  <td data-testid="attachment-state">{n.state}</td>
                  <td>
                    <Presence state={n.healthState} />
                  </td>
                  <td>
                    {n.nodeVersion}
                    {n.readOnly && (
                      <span
                        className="badge warn"
                        data-testid="read-only"
                        title="Below the session's minimum node version"
                      >
                        read-only
                      </span>
                    )}
                  </td>
                  <td>
                    {Object.keys(n.capabilities).map((c) => (
                      <span key={c} className="badge">
                        {c}
                      </span>
                    ))}
                  </td>
                  <td>{percent(n.metrics?.cpuPercent)}</td>
                  <td>{ago(n.lastHeartbeatAt, now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function RaiseFloor({ sessionId, current }: { sessionId: string; current: string | null }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const id = useId();
  const [version, setVersion] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const raise = useMutation(
    trpc.session.raiseFloor.mutationOptions({
      onSuccess: (session) => {
        queryClient.setQueryData(trpc.session.get.queryKey({ sessionId }), session);
        void queryClient.invalidateQueries(trpc.runtimenode.roster.queryFilter({ sessionId }));
        void queryClient.invalidateQueries(trpc.session.list.pathFilter());
        setDone(`The floor is now ${session.minNodeVersion ?? version}.`);
        setVersion('');
      },
    }),
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setDone(null);
    raise.mutate({ sessionId, minNodeVersion: version.trim() });
  };
  return (
    <form className="panel" aria-label="Raise floor" onSubmit={submit}>
      <h2>Version floor</h2>
      <p id={`${id}-help`} className="muted">
        The floor only goes up: a version at or below the current one ({current ?? 'none yet'}) is
        refused. Nodes attached with an older node version stay attached but become read-only;
        nobody is disconnected. Versions are MAJOR.MINOR, e.g. 2.1.
      </p>
      <div className="form-row">
        <div className="field">
          <label htmlFor={`${id}-version`}>Minimum node version</label>
          <input
            id={`${id}-version`}
            value={version}
            inputMode="decimal"
            placeholder="MAJOR.MINOR"
            aria-describedby={`${id}-help`}
            onChange={(e) => setVersion(e.target.value)}
          />
        </div>
        <button type="submit" disabled={raise.isPending || version.trim() === ''}>
          Raise floor
        </button>
      </div>
      {raise.error !== null && (
        <p role="alert" className="error">
          {errorMessage(raise.error)}
        </p>
      )}
      {done !== null && (
        <p role="status" className="muted">
          {done}
        </p>
      )}
    </form>
  );
}

function Members({ sessionId }: { sessionId: string }) {
  const trpc = useTRPC();
  const members = useQuery(trpc.membership.list.queryOptions({ sessionId }));
  return (
    <div className="panel">
      <h2>Members</h2>
      {members.isPending ? (
        <Loading what="members" />
      ) : members.isError ? (
        <Failed error={members.error} retry={() => void members.refetch()} />
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Participant</th>
                <th scope="col">Role</th>
                <th scope="col">State</th>
                <th scope="col">Joined</th>
              </tr>
            </thead>
            <tbody>
              {members.data.items.map((m) => (
                <tr key={m.membershipId} data-participant-id={m.participantId}>
                  <td>
                    <code>{m.participantId}</code>
                  </td>
                  <td>{m.role}</td>
                  <td>{m.state}</td>
                  <td>{dateTime(m.joinedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <AddMember sessionId={sessionId} />
    </div>
  );
}

const ROLES = ['collaborator', 'viewer', 'runtime contributor', 'owner'] as const;

function AddMember({ sessionId }: { sessionId: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const id = useId();
  const [participantId, setParticipantId] = useState('');
  const [role, setRole] = useState<(typeof ROLES)[number]>('collaborator');
  const add = useMutation(
    trpc.membership.add.mutationOptions({
      onSuccess: () => {
        setParticipantId('');
        void queryClient.invalidateQueries(trpc.membership.list.queryFilter({ sessionId }));
      },
    }),
  );
  return (
    <form
      className="form-row"
      aria-label="Add member"
      onSubmit={(e) => {
        e.preventDefault();
        add.mutate({ sessionId, participantId: participantId.trim(), role });
      }}
    >
      <div className="field">
        <label htmlFor={`${id}-pid`}>Participant id</label>
        <input
          id={`${id}-pid`}
          value={participantId}
          onChange={(e) => setParticipantId(e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor={`${id}-role`}>Role</label>
        <select
          id={`${id}-role`}
          value={role}
          onChange={(e) => setRole(e.target.value as (typeof ROLES)[number])}
        >
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </div>
      <button type="submit" disabled={add.isPending || participantId.trim() === ''}>
        Add member
      </button>
      {add.error !== null && (
        <p role="alert" className="error">
          {errorMessage(add.error)}
        </p>
      )}
    </form>
  );
}
