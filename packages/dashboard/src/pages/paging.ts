/**
 * Cursor paging with TanStack's infinite queries over tRPC. tRPC's own `infiniteQueryOptions`
 * adds a `direction` field to the input, which Tether's strict inputs refuse; these pages send
 * exactly `{ ...filters, cursor }`, under the query key tRPC would use (so cache updates that
 * target a procedure's path reach them).
 */
import { useInfiniteQuery } from '@tanstack/react-query';
import { useTRPC, useTRPCClient } from '../trpc.js';
import type { NodeFilter } from '../cache.js';

export function useNodePages(filter: NodeFilter & { limit: number }) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  return useInfiniteQuery({
    queryKey: trpc.node.list.infiniteQueryKey(filter),
    queryFn: ({ pageParam, signal }) =>
      client.node.list.query(
        { ...filter, ...(pageParam !== null ? { cursor: pageParam } : {}) },
        { signal },
      ),
    initialPageParam: null as string | null,
    getNextPageParam: (page) => page.nextCursor,
    staleTime: 60_000,
  });
}

export function useSessionPages(limit: number) {
  const trpc = useTRPC();
  const client = useTRPCClient();
  return useInfiniteQuery({
    queryKey: trpc.session.list.infiniteQueryKey({ limit }),
    queryFn: ({ pageParam, signal }) =>
      client.session.list.query(
        { limit, ...(pageParam !== null ? { cursor: pageParam } : {}) },
        { signal },
      ),
    initialPageParam: null as string | null,
    getNextPageParam: (page) => page.nextCursor,
  });
}
