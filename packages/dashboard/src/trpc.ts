/**
 * The dashboard's only way to the server: `@tether/client`'s links (HTTP batching for queries
 * and mutations, Server-Sent Events for `fleet.events`) under tRPC's TanStack Query integration.
 */
import { tetherLinks, type AppRouter } from '@tether/client';
import { createTRPCClient, type TRPCLink } from '@trpc/client';
import { createTRPCContext } from '@trpc/tanstack-react-query';

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();

/**
 * Where the API is: this page's origin (the control plane serves the dashboard), or
 * `VITE_TETHER_URL` for a dashboard served elsewhere (the Vite dev server; the control plane
 * must then list this origin in `TETHER_CORS_ORIGINS`).
 */
export function serverUrl(): string {
  const configured = import.meta.env.VITE_TETHER_URL as string | undefined;
  return configured !== undefined && configured !== '' ? configured : window.location.origin;
}

/**
 * TanStack's infinite queries add `direction` (forward/backward) to a paged query's input; the
 * API pages forward only and its inputs are strict (an unknown key is a 400), so it is dropped.
 */
const withoutPagingDirection: TRPCLink<AppRouter> =
  () =>
  ({ op, next }) => {
    if (op.type !== 'query' || typeof op.input !== 'object' || op.input === null) return next(op);
    if (!('direction' in op.input)) return next(op);
    const { direction: _direction, ...input } = op.input as Record<string, unknown>;
    return next({ ...op, input });
  };

export function createApiClient(token: string) {
  return createTRPCClient<AppRouter>({
    links: [withoutPagingDirection, ...tetherLinks({ url: serverUrl(), token })],
  });
}

export type ApiClient = ReturnType<typeof createApiClient>;
