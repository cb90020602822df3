/**
 * The fleet: counters, filters (each one a `node.list` input), and every node in a virtualised
 * list loaded page by page (keyset cursors) as it scrolls, so 10 000 nodes stay fast. Rows change
 * in place from the live feed (cache.ts); a row on screen takes its metrics (its numbers when
 * newer than the list's, and its sparklines) from `node.metrics` (heartbeats are not fleet
 * events), refreshed every 10 s while it is shown.
 */
import type { NodeView } from '@tether/client';
import { useQuery } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useId, useMemo, useRef, useState } from 'react';
import { Link } from 'wouter';
import type { NodeFilter } from '../cache.js';
import { Failed, Loading, Presence } from '../components/Status.js';
import { Sparkline } from '../components/Sparkline.js';
import { ago, bytes, duration, memoryPercent, percent, shortId } from '../format.js';
import { useDebounced, useMediaQuery, useNow, useSettledMount } from '../hooks.js';
import { useTRPC } from '../trpc.js';
import { useNodePages } from './paging.js';

const PAGE_SIZE = 200;
const ROW_HEIGHT = 52;
/** On a phone each row is a small card (two columns of fields). */
const CARD_HEIGHT = 168;

interface FilterFields {
  search: string;
  presence: '' | 'online' | 'degraded' | 'offline';
  capability: string;
  type: string;
  location: string;
  label: string;
  session: string;
}

const EMPTY: FilterFields = {
  search: '',
  presence: '',
  capability: '',
  type: '',
  location: '',
  label: '',
  session: '',
};

function toFilter(f: FilterFields): NodeFilter {
  const out: NodeFilter = {};
  const t = (s: string) => s.trim();
  if (t(f.search) !== '') out.search = t(f.search);
  if (f.presence !== '') out.healthState = f.presence;
  if (t(f.capability) !== '') out.capability = t(f.capability);
  if (t(f.type) !== '') out.nodeType = t(f.type);
  if (t(f.location) !== '') out.location = t(f.location);
  if (t(f.label) !== '') out.label = t(f.label);
  if (f.session !== '') out.sessionId = f.session;
  return out;
}

export function FleetPage() {
  const trpc = useTRPC();
  const [fields, setFields] = useState<FilterFields>(EMPTY);
  const settled = useDebounced(fields, 250);
  const filter = useMemo(() => toFilter(settled), [settled]);
  const { healthState: _presence, ...countsFilter } = filter;

  const counts = useQuery(trpc.node.counts.queryOptions(countsFilter, { staleTime: 5_000 }));
  const list = useNodePages({ ...filter, limit: PAGE_SIZE });
  const rows = useMemo(() => list.data?.pages.flatMap((p) => p.items) ?? [], [list.data]);

  return (
    <section aria-labelledby="fleet-title">
      <h1 id="fleet-title">Fleet</h1>
      <div className="counters" aria-label="Fleet counters" role="group">
        {(['online', 'degraded', 'offline'] as const).map((state) => (
          <div key={state} className="counter">
            <span className="presence" data-presence={state}>
              <span className="dot" aria-hidden="true" />
              {state}
            </span>
            <strong data-testid={`count-${state}`}>{counts.data?.[state] ?? '–'}</strong>
          </div>
        ))}
        {counts.isError && <Failed error={counts.error} retry={() => void counts.refetch()} />}
      </div>
      <Filters fields={fields} onChange={setFields} />
      <div className="toolbar">
        <span>
          <span data-testid="row-count">{rows.length}</span> nodes
          {list.hasNextPage ? ' loaded (more as you scroll)' : ' matched'}
        </span>
        {list.isFetching && !list.isFetchingNextPage && (
          <span className="muted" role="status">
            Updating…
          </span>
        )}
        {fields !== EMPTY && (
          <button type="button" className="secondary" onClick={() => setFields(EMPTY)}>
            Clear filters
          </button>
        )}
      </div>
      {list.isPending ? (
        <Loading what="nodes" />
      ) : list.isError && rows.length === 0 ? (
        <Failed error={list.error} retry={() => void list.refetch()} />
      ) : (
        <FleetTable
          rows={rows}
          hasMore={list.hasNextPage}
          loadingMore={list.isFetchingNextPage}
          loadMore={() => void list.fetchNextPage()}
        />
      )}
    </section>
  );
}

function Filters({
  fields,
  onChange,
}: {
  fields: FilterFields;
  onChange: (f: FilterFields) => void;
}) {
  const trpc = useTRPC();
  const sessions = useQuery(trpc.session.list.queryOptions({ limit: 500 }, { staleTime: 60_000 }));
  const id = useId();
  const text = (key: keyof FilterFields, label: string, placeholder: string) => (
    <div className="field">
      <label htmlFor={`${id}-${key}`}>{label}</label>
      <input
        id={`${id}-${key}`}
        type={key === 'search' ? 'search' : 'text'}
        placeholder={placeholder}
        value={fields[key]}
        onChange={(e) => onChange({ ...fields, [key]: e.target.value })}
      />
    </div>
  );
  return (
    <form
      className="filters"
      role="search"
      aria-label="Filter nodes"
      onSubmit={(e) => e.preventDefault()}
    >
      {text('search', 'Search', 'name or node id')}
      <div className="field">
        <label htmlFor={`${id}-presence`}>Presence</label>
        <select
          id={`${id}-presence`}
          value={fields.presence}
          onChange={(e) =>
            onChange({ ...fields, presence: e.target.value as FilterFields['presence'] })
          }
        >
          <option value="">any</option>
          <option value="online">online</option>
          <option value="degraded">degraded</option>
          <option value="offline">offline</option>
        </select>
      </div>
      {text('capability', 'Capability', 'e.g. camera.capture')}
      {text('type', 'Type', 'e.g. daemon')}
      {text('location', 'Location', 'exact')}
      {text('label', 'Label', 'key or key=value')}
      <div className="field">
        <label htmlFor={`${id}-session`}>Session</label>
        <select
          id={`${id}-session`}
          value={fields.session}
          onChange={(e) => onChange({ ...fields, session: e.target.value })}
        >
          <option value="">any</option>
          {sessions.data?.items.map((s) => (
            <option key={s.sessionId} value={s.sessionId}>
              {s.name}
            </option>
          ))}
        </select>
      </div>
    </form>
  );
}

function FleetTable({
  rows,
  hasMore,
  loadingMore,
  loadMore,
}: {
  rows: NodeView[];
  hasMore: boolean;
  loadingMore: boolean;
  loadMore: () => void;
}) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const now = useNow();
  const compact = useMediaQuery('(max-width: 640px)');
  const rowHeight = compact ? CARD_HEIGHT : ROW_HEIGHT;
  const virtualizer = useVirtualizer({
    count: hasMore ? rows.length + 1 : rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => rowHeight,
    overscan: 8,
    getItemKey: (index) => rows[index]?.nodeId ?? `more-${index}`,
  });
  useEffect(() => virtualizer.measure(), [virtualizer, rowHeight]);
  const items = virtualizer.getVirtualItems();
  const lastIndex = items[items.length - 1]?.index ?? 0;
  useEffect(() => {
    if (hasMore && !loadingMore && lastIndex >= rows.length - 20) loadMore();
  }, [hasMore, loadingMore, lastIndex, rows.length, loadMore]);

  if (rows.length === 0) {
    return (
      <div className="panel">
        <p>No nodes match. Enroll one with a key (Enrollment keys) or approve a pairing request.</p>
      </div>
    );
  }
  return (
    <div className="fleet" role="table" aria-label="Nodes" aria-rowcount={rows.length + 1}>
      <div className="fleet-scroll" ref={scrollRef} tabIndex={0} aria-label="Node rows, scrollable">
        <div className="fleet-head" role="row">
          <span role="columnheader">Node</span>
          <span role="columnheader">Presence</span>
          <span role="columnheader">Attachment</span>
          <span role="columnheader">Version</span>
          <span role="columnheader">Capabilities</span>
          <span role="columnheader">CPU</span>
          <span role="columnheader">Memory</span>
          <span role="columnheader">Uptime</span>
          <span role="columnheader">Last heartbeat</span>
        </div>
        <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {items.map((item) => {
            const node = rows[item.index];
            return (
              <div
                key={item.key}
                className="fleet-row"
                role="row"
                aria-rowindex={item.index + 2}
                style={{ transform: `translateY(${item.start}px)`, height: item.size }}
                {...(node !== undefined ? { 'data-node-id': node.nodeId } : {})}
              >
                {node === undefined ? (
                  <span className="muted">Loading more…</span>
                ) : (
                  <FleetRow node={node} now={now} />
                )}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}

function FleetRow({ node, now }: { node: NodeView; now: number }) {
  const trpc = useTRPC();
  // Rows flying past while scrolling do not ask for their history.
  const settled = useSettledMount(250);
  const history = useQuery(
    trpc.node.metrics.queryOptions(
      { nodeId: node.nodeId },
      {
        staleTime: 8_000,
        refetchInterval: 10_000,
        enabled: settled && node.status === 'active',
      },
    ),
  );
  const p = node.presence;
  const samples = history.data?.samples ?? [];
  // Beats are not fleet events, so the row's metrics are those of the list load; the history
  // (refreshed while the row is shown) is newer when the node reported since: show the newest.
  const latest = samples[samples.length - 1];
  const m =
    latest !== undefined &&
    (p.metrics === null ||
      p.metricsReportedAt === null ||
      latest.at.getTime() > p.metricsReportedAt.getTime())
      ? latest
      : p.metrics;
  const cpu = samples.flatMap((s) => (s.cpuPercent === undefined ? [] : [s.cpuPercent]));
  const mem = samples.flatMap((s) => {
    const v = memoryPercent(s);
    return v === undefined ? [] : [v];
  });
  const since =
    p.healthState === 'offline'
      ? p.lastHeartbeatAt !== null
        ? `(last seen ${ago(p.lastHeartbeatAt, now)})`
        : '(never seen)'
      : p.onlineSince !== null
        ? `since ${ago(p.onlineSince, now)}`
        : undefined;
  const caps = Object.keys(node.capabilities);
  const att = node.activeAttachment;
  return (
    <>
      <span className="cell" role="cell">
        <Link href={`/nodes/${encodeURIComponent(node.nodeId)}`}>{node.name}</Link>
        <br />
        <span className="muted">{node.nodeId}</span>
        {node.status === 'revoked' && <span className="badge warn">revoked</span>}
      </span>
      <span className="cell wrap" role="cell" data-label="Presence">
        <Presence state={p.healthState} since={since} />
      </span>
      <span className="cell wrap" role="cell" data-label="Attachment">
        {att === null ? (
          <span className="muted">not attached</span>
        ) : (
          <>
            {att.state} in{' '}
            <Link href={`/sessions/${att.sessionId}`} title={att.sessionId}>
              {shortId(att.sessionId)}
            </Link>
            {att.readOnly && (
              <span className="badge warn" data-testid="read-only">
                read-only
              </span>
            )}
          </>
        )}
      </span>
      <span className="cell" role="cell" data-label="Version">
        {node.nodeVersion ?? '—'}
      </span>
      <span className="cell" role="cell" title={caps.join(', ')} data-label="Capabilities">
        {caps.length === 0 ? (
          <span className="muted">none</span>
        ) : (
          caps.map((c) => (
            <span key={c} className="badge">
              {c}
            </span>
          ))
        )}
      </span>
      <span className="cell metric" role="cell" data-label="CPU">
        <span data-testid="cpu">{percent(m?.cpuPercent)}</span>
        <Sparkline
          values={cpu}
          max={100}
          label={`CPU of ${node.name}, recent samples`}
          width={40}
        />
      </span>
      <span className="cell metric" role="cell" data-label="Memory">
        <span
          data-testid="memory"
          title={m ? `${bytes(m.memoryUsedBytes)} of ${bytes(m.memoryTotalBytes)}` : undefined}
        >
          {percent(memoryPercent(m))}
        </span>
        <Sparkline
          values={mem}
          max={100}
          label={`Memory of ${node.name}, recent samples`}
          width={40}
        />
      </span>
      <span className="cell" role="cell" data-testid="uptime" data-label="Uptime">
        {duration(m?.uptimeSeconds)}
      </span>
      <span
        className="cell"
        role="cell"
        title={p.lastHeartbeatAt?.toLocaleString()}
        data-label="Last heartbeat"
      >
        {ago(p.lastHeartbeatAt, now)}
      </span>
    </>
  );
}
