/** initTRPC, exactly once. Everything else builds on what this file exports. */
import { initTRPC } from '@trpc/server';
import type { z } from 'zod';
import type { Context } from './context.js';
import { formatError } from './error-formatter.js';

/** What a procedure declares besides its input and output. */
export interface ProcedureMeta {
  /**
   * A subscription's event schema (the contract's `WIRE_PROCEDURES[path].output`). tRPC's
   * `.output()` does not reach the values a subscription yields, so every yielded value is
   * parsed with this schema instead (`parseEvents` in procedures.ts).
   */
  eventOutput?: z.ZodType;
}

const t = initTRPC
  .context<Context>()
  .meta<ProcedureMeta>()
  .create({
    errorFormatter: ({ error, path }) => formatError({ error, path }),
    // Wire contracts stay JSON-native: no transformer, so curl and any HTTP client can call us.
    isDev: false,
  });

export const router = t.router;
export const middleware = t.middleware;
export const createCallerFactory = t.createCallerFactory;
export const baseProcedure = t.procedure;
