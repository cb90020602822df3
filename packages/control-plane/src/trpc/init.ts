/** initTRPC, exactly once. Everything else builds on what this file exports. */
import { initTRPC } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import type { z } from 'zod';
import type { Context } from './context.js';
import { formatError } from './error-formatter.js';
import { transformer } from './transformer.js';

/** What a procedure declares besides its input and output. */
export interface ProcedureMeta {
  /**
   * A subscription's event schema (the contract's `WIRE_PROCEDURES[path].output`). tRPC's
   * `.output()` does not reach the values a subscription yields, so every yielded value is
   * parsed with this schema instead (`parseEvents` in procedures.ts).
   */
  eventOutput?: z.ZodType;
}

/** Procedure meta: ours, plus the REST operation of each query and mutation (rest-meta.ts). */
export type TetherMeta = OpenApiMeta<ProcedureMeta & Record<string, unknown>>;

const t = initTRPC
  .context<Context>()
  .meta<TetherMeta>()
  .create({
    // TypeScript clients get `Date`s (and BigInts, Maps…) end to end; plain-JSON clients use the
    // REST surface at /api/v1, generated from these same procedures. superjson, with shared
    // outputs (fan-out) serialised once (transformer.ts).
    transformer,
    errorFormatter: ({ error, path }) => formatError({ error, path }),
    isDev: false,
  });

export const router = t.router;
export const middleware = t.middleware;
export const createCallerFactory = t.createCallerFactory;
export const baseProcedure = t.procedure;
/** The root config (transformer, error formatter), for code that writes tRPC frames itself. */
export const rootConfig = t._config;
