/**
 * The dashboard's only way to the server: `@tether/client`'s links (HTTP batching for queries
 * and mutations, Server-Sent Events for `fleet.events`) under tRPC's TanStack Query integration.
 */
import { tetherLinks, type AppRouter } from '@tether/client';
import { createTRPCClient } from '@trpc/client';
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

export function createApiClient(token: string) {
  return createTRPCClient<AppRouter>({ links: tetherLinks({ url: serverUrl(), token }) });
}

export type ApiClient = ReturnType<typeof createApiClient>;
