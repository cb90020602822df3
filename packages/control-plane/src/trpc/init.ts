/** initTRPC, exactly once. Everything else builds on what this file exports. */
import { initTRPC } from '@trpc/server';
import superjson from 'superjson';
import type { OpenApiMeta } from 'trpc-to-openapi';
import type { Context } from './context.js';
import { formatError } from './error-formatter.js';

// Meta: each query and mutation also names its REST operation (`/api/v1`, see rest-meta.ts).
const t = initTRPC
  .context<Context>()
  .meta<OpenApiMeta>()
  .create({
    // TypeScript clients get `Date`s (and BigInts, Maps…) end to end; plain-JSON clients use the
    // REST surface at /api/v1, generated from these same procedures.
    transformer: superjson,
    errorFormatter: ({ error, path }) => formatError({ error, path }),
    isDev: false,
  });

export const router = t.router;
export const middleware = t.middleware;
export const createCallerFactory = t.createCallerFactory;
export const baseProcedure = t.procedure;
/** The root config (transformer, error formatter), for code that writes tRPC frames itself. */
export const rootConfig = t._config;
