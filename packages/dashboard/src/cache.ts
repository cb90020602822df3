/**
 * How fleet events change what the pages show, in place, without polling:
 *  - `presence.changed` patches the node's presence in every loaded fleet page and node view;
 *  - events that change more of a node (enrolled, updated, attached, detached, capabilities,
 *    revoked) fetch that node's view once (coalesced per batch) and replace its row — or add it
 *    to the lists whose filters it matches, when it is new;
 *  - counters, rosters, sessions and the pairing inbox are invalidated: active queries refetch
 *    once per batch, inactive ones when next shown;
 *  - `command.invoked` / `command.state_changed` invalidate the command lists they may be in (the
 *    history of the event's node) and the changed commands' `command.get`.
 */
import type { AppRouter, FleetEvent, NodeView } from '@tether/client';
import type { InfiniteData, QueryClient } from '@tanstack/react-query';
import type { TRPCOptionsProxy } from '@trpc/tanstack-react-query';
import { isTetherError } from '@tether/client';

type Trpc = TRPCOptionsProxy<AppRouter>;
type NodePage = { items: NodeView[]; nextCursor: string | null };
type NodeListData = InfiniteData<NodePage, unknown>;

/** The `node.list` filters a page was loaded with (its query key holds them). */
export interface NodeFilter {
  healthState?: 'online' | 'degraded' | 'offline' | undefined;
  capability?: string | undefined;
  nodeType?: string | undefined;
  location?: string | undefined;
  label?: string | undefined;
  sessionId?: string | undefined;
  search?: string | undefined;
  status?: 'active' | 'revoked' | undefined;
}

/** Whether a node matches the filters, as the server's `node.list` decides. */
export function matchesFilter(node: NodeView, f: NodeFilter): boolean {
  if (f.status !== undefined && node.status !== f.status) return false;
  if (f.healthState !== undefined && node.presence.healthState !== f.healthState) return false;
  if (f.capability !== undefined && !(f.capability in node.capabilities)) return false;
  if (f.nodeType !== undefined && node.nodeType !== f.nodeType) return false;
  if (f.location !== undefined && node.location !== f.location) return false;
  if (f.label !== undefined) {
    const eq = f.label.indexOf('=');
    const key = eq === -1 ? f.label : f.label.slice(0, eq);
    if (!(key in node.labels)) return false;
    if (eq !== -1 && node.labels[key] !== f.label.slice(eq + 1)) return false;
  }
  if (f.sessionId !== undefined && node.activeAttachment?.sessionId !== f.sessionId) return false;
  if (f.search !== undefined) {
    const s = f.search.toLowerCase();
    if (!node.nodeId.toLowerCase().includes(s) && !node.name.toLowerCase().includes(s)) {
      return false;
    }
  }
  return true;
}

function withPresence(
  node: NodeView,
  change: { from: string; to: NodeView['presence']['healthState']; at: Date; cause: string },
): NodeView {
  const p = node.presence;
  return {
    ...node,
    presence: {
      ...p,
      healthState: change.to,
      onlineSince:
        change.to === 'offline' ? null : change.from === 'offline' ? change.at : p.onlineSince,
      lastHeartbeatAt: change.cause === 'heartbeat' ? change.at : p.lastHeartbeatAt,
    },
  };
}

function mapPages(data: NodeListData, fn: (node: NodeView) => NodeView | null): NodeListData {
  let changed = false;
  const pages = data.pages.map((page) => {
    let pageChanged = false;
    const items: NodeView[] = [];
    for (const node of page.items) {
      const next = fn(node);
      if (next !== node) pageChanged = true;
      if (next !== null) items.push(next);
    }
    if (!pageChanged) return page;
    changed = true;
    return { ...page, items };
  });
  return changed ? { ...data, pages } : data;
}

function filterOfKey(key: readonly unknown[]): NodeFilter {
  const meta = key[1] as { input?: NodeFilter } | undefined;
  return meta?.input ?? {};
}

/** At most this many nodes are fetched again per batch; beyond it the lists reload. */
const REFRESH_MAX = 100;

export function applyEvents(queryClient: QueryClient, trpc: Trpc, events: FleetEvent[]): void {
  const presence = new Map<string, Parameters<typeof withPresence>[1]>();
  const refresh = new Set<string>();
  let counts = false;
  let pairing = false;
  let rosters = false;
  const sessions = new Set<string>();
  const commands = new Set<string>();
  const commandNodes = new Set<string>();
  for (const e of events) {
    const nodeId = e.nodeId;
    switch (e.type) {
      case 'presence.changed':
        if (nodeId !== null) {
          const prev = presence.get(nodeId);
          presence.set(nodeId, {
            from: prev?.from ?? e.data.from,
            to: e.data.to,
            at: e.at,
            cause: e.data.cause,
          });
        }
        counts = true;
        rosters = true;
        break;
      case 'node.enrolled':
      case 'node.revoked':
        counts = true;
        if (nodeId !== null) refresh.add(nodeId);
        break;
      case 'node.updated':
        if (nodeId !== null) refresh.add(nodeId);
        break;
      case 'runtimenode.attached':
      case 'runtimenode.detached':
      case 'runtimenode.state_changed':
      case 'runtimenode.capabilities_updated':
      case 'runtimenode.revoked':
        if (nodeId !== null) refresh.add(nodeId);
        rosters = true;
        break;
      case 'session.floor_raised':
        if (e.sessionId !== null) sessions.add(e.sessionId);
        break;
      case 'pairing.requested':
      case 'pairing.approved':
      case 'pairing.rejected':
      case 'pairing.expired':
        pairing = true;
        break;
      case 'command.invoked':
      case 'command.state_changed':
        commands.add(e.data.commandId);
        if (nodeId !== null) commandNodes.add(nodeId);
        break;
    }
  }

  if (presence.size > 0) {
    queryClient.setQueriesData<NodeListData>({ queryKey: trpc.node.list.pathKey() }, (data) =>
      data === undefined
        ? data
        : mapPages(data, (node) => {
            const change = presence.get(node.nodeId);
            return change === undefined ? node : withPresence(node, change);
          }),
    );
    for (const [nodeId, change] of presence) {
      queryClient.setQueryData(trpc.node.get.queryKey({ nodeId }), (node) =>
        node === undefined ? node : withPresence(node, change),
      );
    }
  }

  if (refresh.size > REFRESH_MAX) {
    void queryClient.invalidateQueries(trpc.node.list.pathFilter());
    void queryClient.invalidateQueries(trpc.node.get.pathFilter());
  } else {
    for (const nodeId of refresh) void refreshNode(queryClient, trpc, nodeId);
  }
  if (counts) void queryClient.invalidateQueries(trpc.node.counts.pathFilter());
  if (rosters) void queryClient.invalidateQueries(trpc.runtimenode.roster.pathFilter());
  if (pairing) void queryClient.invalidateQueries(trpc.pairing.list.pathFilter());
  if (commands.size > 0) {
    // Only the lists these commands may be in: one node's history, or lists not by node.
    void queryClient.invalidateQueries({
      ...trpc.command.list.pathFilter(),
      predicate: (query) => {
        const nodeId = (query.queryKey[1] as { input?: { nodeId?: string } } | undefined)?.input
          ?.nodeId;
        return nodeId === undefined || commandNodes.has(nodeId);
      },
    });
    for (const commandId of commands) {
      void queryClient.invalidateQueries(trpc.command.get.queryFilter({ commandId }));
    }
  }
  for (const sessionId of sessions) {
    void queryClient.invalidateQueries(trpc.session.get.queryFilter({ sessionId }));
    void queryClient.invalidateQueries(trpc.session.list.pathFilter());
  }
  if (sessions.size > 0) {
    // A raised floor can make any node attached there read-only (node views say so): rare
    // enough to reload the lists rather than work out which rows changed.
    void queryClient.invalidateQueries(trpc.node.list.pathFilter());
    void queryClient.invalidateQueries(trpc.node.get.pathFilter());
  }
}

/** Fetches one node's view and puts it wherever it shows (or takes it out if it is gone). */
async function refreshNode(queryClient: QueryClient, trpc: Trpc, nodeId: string): Promise<void> {
  let node: NodeView | null;
  try {
    node = await queryClient.fetchQuery({
      ...trpc.node.get.queryOptions({ nodeId }),
      staleTime: 0,
    });
  } catch (error) {
    if (!isTetherError(error, 'node.not_found')) return;
    node = null;
  }
  for (const [key, data] of queryClient.getQueriesData<NodeListData>({
    queryKey: trpc.node.list.pathKey(),
  })) {
    if (data === undefined) continue;
    let found = false;
    let next = mapPages(data, (row) => {
      if (row.nodeId !== nodeId) return row;
      found = true;
      return node;
    });
    if (!found && node !== null && matchesFilter(node, filterOfKey(key))) {
      // A node this list did not have: shown at the top until the list is reloaded.
      const [first, ...rest] = next.pages;
      if (first !== undefined) {
        next = { ...next, pages: [{ ...first, items: [node, ...first.items] }, ...rest] };
      }
    }
    if (next !== data) queryClient.setQueryData(key, next);
  }
}
