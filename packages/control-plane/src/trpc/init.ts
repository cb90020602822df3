/** initTRPC, exactly once. Everything else builds on what this file exports. */
import { initTRPC } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import type { Context } from './context.js';
import { formatError } from './error-formatter.js';

// Meta: each query and mutation also names its REST operation (`/api/v1`, see rest-meta.ts).
const t = initTRPC
  .context<Context>()
  .meta<OpenApiMeta>()
  .create({
    errorFormatter: ({ error, path }) => formatError({ error, path }),
    // Wire contracts stay JSON-native: no transformer, so curl and any HTTP client can call us.
    isDev: false,
  });

export const router = t.router;
export const middleware = t.middleware;
export const createCallerFactory = t.createCallerFactory;
export const baseProcedure = t.procedure;
