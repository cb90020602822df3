/**
 * One node: identity, labels, capability descriptors (each with a "Run" form) and its command
 * history (NodeCommands.tsx), its presence history (from the feed: `fleet.list` filtered by
 * node, then live events), its metrics chart (`node.metrics`) and the owner's actions: edit,
 * rotate token (shown once), revoke (confirmed).
 */
import type { FleetEvent, NodeView } from '@tether/client';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState, type FormEvent } from 'react';
import { Link } from 'wouter';
import { ConfirmDialog } from '../components/Dialog.js';
import { Secret } from '../components/Secret.js';
import { LineChart } from '../components/Sparkline.js';
import { Failed, Loading, Presence } from '../components/Status.js';
import { errorMessage } from '../errors.js';
import { ago, bytes, dateTime, duration, memoryPercent, parseLabels, percent } from '../format.js';
import { useFleetEvents } from '../live.js';
import { useNow } from '../hooks.js';
import { useTRPC } from '../trpc.js';
import { Capabilities, CommandHistory } from './NodeCommands.js';

const HISTORY_TYPES = [
  'presence.changed',
  'node.enrolled',
  'node.revoked',
  'runtimenode.attached',
  'runtimenode.detached',
  'runtimenode.state_changed',
  'runtimenode.revoked',
] as const;

export function NodePage({ nodeId }: { nodeId: string }) {
  const trpc = useTRPC();
  const node = useQuery(trpc.node.get.queryOptions({ nodeId }));
  if (node.isPending) return <Loading what="the node" />;
  if (node.isError) {
    return (
      <section>
        <h1>Node {nodeId}</h1>
        <Failed error={node.error} retry={() => void node.refetch()} />
        <p>
          <Link href="/">Back to the fleet</Link>
        </p>
      </section>
    );
  }
  return <NodeDetails node={node.data} />;
}

function NodeDetails({ node }: { node: NodeView }) {
  const now = useNow();
  const p = node.presence;
  const m = p.metrics;
  const att = node.activeAttachment;
  return (
    <section aria-labelledby="node-title">
      <p>
        <Link href="/">← Fleet</Link>
      </p>
      <h1 id="node-title">{node.name}</h1>
      <div className="panel">
        <dl className="facts">
          <dt>Node id</dt>
          <dd>
            <code>{node.nodeId}</code>
          </dd>
          <dt>Status</dt>
          <dd>
            {node.status}
            {node.revokedAt !== null && ` (revoked ${dateTime(node.revokedAt)})`}
          </dd>
          <dt>Presence</dt>
          <dd>
            <Presence
              state={p.healthState}
              since={p.onlineSince !== null ? `since ${dateTime(p.onlineSince)}` : undefined}
            />
          </dd>
          <dt>Last heartbeat</dt>
          <dd>
            {ago(p.lastHeartbeatAt, now)}{' '}
            {p.lastHeartbeatAt !== null && `(${dateTime(p.lastHeartbeatAt)})`}
          </dd>
          <dt>Type / platform</dt>
          <dd>
            {node.nodeType} / {node.platform ?? '—'}
          </dd>
          <dt>Location</dt>
          <dd>{node.location ?? '—'}</dd>
          <dt>Client version</dt>
          <dd>{node.nodeVersion ?? '—'}</dd>
          <dt>Attachment</dt>
          <dd>
            {att === null ? (
              'not attached'
            ) : (
              <>
                {att.state} in session{' '}
                <Link href={`/sessions/${att.sessionId}`}>{att.sessionId}</Link> since{' '}
                {dateTime(att.attachedAt)}
                {att.readOnly && (
                  <span className="badge warn" data-testid="read-only">
                    read-only
                  </span>
                )}
              </>
            )}
          </dd>
          <dt>Owner</dt>
          <dd>
            <code>{node.ownerParticipantId}</code>
          </dd>
          <dt>Enrolled</dt>
          <dd>{dateTime(node.enrolledAt)}</dd>
          <dt>Labels</dt>
          <dd>
            {Object.keys(node.labels).length === 0
              ? '—'
              : Object.entries(node.labels).map(([k, v]) => (
                  <span key={k} className="badge">
                    {k}={v}
                  </span>
                ))}
          </dd>
          <dt>Latest metrics</dt>
          <dd>
            CPU <span data-testid="cpu">{percent(m?.cpuPercent)}</span>, memory{' '}
            <span data-testid="memory">{percent(memoryPercent(m))}</span> (
            {bytes(m?.memoryUsedBytes)} of {bytes(m?.memoryTotalBytes)}), uptime{' '}
            <span data-testid="uptime">{duration(m?.uptimeSeconds)}</span>
          </dd>
        </dl>
      </div>
      {node.status === 'active' && <Actions node={node} />}
      <Capabilities node={node} />
      <CommandHistory node={node} />
      <Metrics nodeId={node.nodeId} />
      <History nodeId={node.nodeId} />
    </section>
  );
}

function Metrics({ nodeId }: { nodeId: string }) {
  const trpc = useTRPC();
  const metrics = useQuery(
    trpc.node.metrics.queryOptions({ nodeId }, { refetchInterval: 15_000, staleTime: 10_000 }),
  );
  return (
    <div className="panel">
      <h2>Metrics</h2>
      {metrics.isPending ? (
        <Loading what="metrics" />
      ) : metrics.isError ? (
        <Failed error={metrics.error} retry={() => void metrics.refetch()} />
      ) : (
        <>
          <p className="muted">
            {metrics.data.samples.length} samples, at most one every{' '}
            {Math.round(metrics.data.sampleIntervalMs / 1000)} s (up to {metrics.data.maxSamples}{' '}
            kept).
          </p>
          <div className="charts">
            <LineChart
              series={{
                name: 'CPU',
                unit: '%',
                max: Math.max(100, ...metrics.data.samples.map((s) => s.cpuPercent ?? 0)),
                points: metrics.data.samples.flatMap((s) =>
                  s.cpuPercent === undefined ? [] : [[s.at, s.cpuPercent] as [Date, number]],
                ),
              }}
            />
            <LineChart
              series={{
                name: 'Memory',
                unit: '%',
                max: 100,
                points: metrics.data.samples.flatMap((s) => {
                  const v = memoryPercent(s);
                  return v === undefined ? [] : [[s.at, v] as [Date, number]];
                }),
              }}
            />
          </div>
        </>
      )}
    </div>
  );
}

function describe(e: FleetEvent): string {
  switch (e.type) {
    case 'presence.changed':
      return `${e.data.from} → ${e.data.to} (${e.data.cause})`;
    case 'node.enrolled':
      return `enrolled via ${e.data.via === 'pairing' ? 'pairing' : 'enrollment key'}`;
    case 'node.revoked':
      return 'identity revoked';
    case 'runtimenode.attached':
      return `attached (${e.data.state}${e.data.readOnly ? ', read-only' : ''})`;
    case 'runtimenode.detached':
      return `detached${e.data.reason !== null ? `: ${e.data.reason}` : ''}`;
    case 'runtimenode.state_changed':
      return `${e.data.from} → ${e.data.to}`;
    case 'runtimenode.revoked':
      return `attachment revoked${e.data.reason !== null ? `: ${e.data.reason}` : ''}`;
    default:
      return e.type;
  }
}

function History({ nodeId }: { nodeId: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const input = { filter: { nodeId, types: [...HISTORY_TYPES] }, limit: 500 };
  const history = useQuery(trpc.fleet.list.queryOptions(input, { staleTime: Infinity }));
  // Live events of this node extend the history without a reload.
  useFleetEvents((events) => {
    const mine = events.filter(
      (e) => e.nodeId === nodeId && (HISTORY_TYPES as readonly string[]).includes(e.type),
    );
    if (mine.length === 0) return;
    queryClient.setQueryData(trpc.fleet.list.queryKey(input), (old) =>
      old === undefined
        ? old
        : {
            ...old,
            items: [...old.items, ...mine.filter((e) => !old.items.some((o) => o.id === e.id))],
          },
    );
  });
  return (
    <div className="panel">
      <h2>Presence history</h2>
      {history.isPending ? (
        <Loading what="history" />
      ) : history.isError ? (
        <Failed error={history.error} retry={() => void history.refetch()} />
      ) : history.data.items.length === 0 ? (
        <p className="muted">No retained events for this node.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Event</th>
                <th scope="col">Change</th>
              </tr>
            </thead>
            <tbody>
              {[...history.data.items].reverse().map((e) => (
                <tr key={e.id}>
                  <td>{dateTime(e.at)}</td>
                  <td>
                    <code>{e.type}</code>
                  </td>
                  <td>{describe(e)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {history.data.hasMore && <p className="muted">Showing the oldest 500 retained events.</p>}
        </div>
      )}
    </div>
  );
}

function Actions({ node }: { node: NodeView }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState(false);
  const [confirm, setConfirm] = useState<'rotate' | 'revoke' | null>(null);
  const [newToken, setNewToken] = useState<string | null>(null);
  const rotate = useMutation(
    trpc.node.reissueToken.mutationOptions({
      onSuccess: (out) => {
        setNewToken(out.nodeToken);
        setConfirm(null);
      },
    }),
  );
  const revoke = useMutation(
    trpc.node.revoke.mutationOptions({
      onSuccess: () => {
        setConfirm(null);
        void queryClient.invalidateQueries(trpc.node.get.queryFilter({ nodeId: node.nodeId }));
        void queryClient.invalidateQueries(trpc.node.list.pathFilter());
        void queryClient.invalidateQueries(trpc.node.counts.pathFilter());
      },
    }),
  );
  const failure = rotate.error ?? revoke.error;
  return (
    <div className="panel">
      <h2>Actions</h2>
      <div className="actions">
        <button type="button" onClick={() => setEditing(true)} disabled={editing}>
          Edit
        </button>
        <button type="button" className="secondary" onClick={() => setConfirm('rotate')}>
          Rotate token
        </button>
        <button type="button" className="danger" onClick={() => setConfirm('revoke')}>
          Revoke
        </button>
      </div>
      {failure !== null && (
        <p role="alert" className="error">
          {errorMessage(failure)}
        </p>
      )}
      {newToken !== null && (
        <>
          <p>The node&apos;s new token (its old one stopped working):</p>
          <Secret value={newToken} testId="new-token" label="New node token" />
        </>
      )}
      {editing && <EditForm node={node} onDone={() => setEditing(false)} />}
      {confirm === 'rotate' && (
        <ConfirmDialog
          title="Rotate this node's token?"
          busy={rotate.isPending}
          onCancel={() => setConfirm(null)}
          onConfirm={() => rotate.mutate({ nodeId: node.nodeId })}
        >
          <p>
            The current token stops working at once; the node stays offline until it is given the
            new one, which is shown here once.
          </p>
        </ConfirmDialog>
      )}
      {confirm === 'revoke' && (
        <ConfirmDialog
          title={`Revoke ${node.name}?`}
          busy={revoke.isPending}
          onCancel={() => setConfirm(null)}
          onConfirm={() => revoke.mutate({ nodeId: node.nodeId })}
        >
          <p>
            Revoking is permanent: the node&apos;s token and every attachment end now, and this
            identity cannot be used again.
          </p>
        </ConfirmDialog>
      )}
    </div>
  );
}

function EditForm({ node, onDone }: { node: NodeView; onDone: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const id = useId();
  const [name, setName] = useState(node.name);
  const [location, setLocation] = useState(node.location ?? '');
  const [labels, setLabels] = useState(
    Object.entries(node.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
  );
  const [invalid, setInvalid] = useState<string | null>(null);
  const update = useMutation(
    trpc.node.update.mutationOptions({
      onSuccess: (view) => {
        queryClient.setQueryData(trpc.node.get.queryKey({ nodeId: node.nodeId }), view);
        void queryClient.invalidateQueries(trpc.node.list.pathFilter());
        onDone();
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
    update.mutate({
      nodeId: node.nodeId,
      name: name.trim(),
      location: location.trim() === '' ? null : location.trim(),
      labels: parsed,
    });
  };
  const error = invalid ?? (update.error !== null ? errorMessage(update.error) : null);
  return (
    <form aria-label="Edit node" onSubmit={submit} className="panel">
      <div className="field">
        <label htmlFor={`${id}-name`}>Name</label>
        <input id={`${id}-name`} value={name} onChange={(e) => setName(e.target.value)} required />
      </div>
      <div className="field">
        <label htmlFor={`${id}-location`}>Location</label>
        <input
          id={`${id}-location`}
          value={location}
          onChange={(e) => setLocation(e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor={`${id}-labels`}>Labels</label>
        <textarea
          id={`${id}-labels`}
          rows={4}
          value={labels}
          onChange={(e) => setLabels(e.target.value)}
          aria-describedby={`${id}-labels-help`}
        />
        <span id={`${id}-labels-help`} className="muted">
          One key=value per line (replaces every label).
        </span>
      </div>
      {error !== null && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={update.isPending}>
          Save
        </button>
        <button type="button" className="secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
