/**
 * `AppRouter`: the type of Tether's API as a typed tRPC client needs it, built from the wire
 * contracts alone (`WIRE_PROCEDURES`: every procedure's kind, input and output schema) instead of
 * the server's router. The server's router type carries its request context (database pool,
 * logger, metrics…), so shipping it would make every consumer's `tsc` read the server's source
 * and its dependencies; a tRPC client only needs the procedures' kinds, inputs and outputs, the
 * error shape and whether a transformer is on.
 *
 * Invariant: this type and the server's `AppRouter` describe the same procedures with the same
 * inputs, outputs and error shape (checked at compile time in `test/router-parity.ts`).
 */
import type { TetherErrorData, WIRE_PROCEDURES, WireProcedure } from '@tether/contracts';
import type {
  TRPCBuiltRouter,
  TRPCMutationProcedure,
  TRPCQueryProcedure,
  TRPCSubscriptionProcedure,
  TRPC_ERROR_CODE_NUMBER,
} from '@trpc/server';
import type { z } from 'zod';

/** Every error the server sends (`TRPCClientError.shape`); `data.tetherError` is the typed part. */
export interface TetherErrorWireShape {
  message: string;
  code: TRPC_ERROR_CODE_NUMBER;
  data: TetherErrorData;
}

type Wire = typeof WIRE_PROCEDURES;

interface Def<P extends WireProcedure, TOutput> {
  input: z.input<P['input']>;
  output: TOutput;
  meta: object;
  errorShape: TetherErrorWireShape;
}

/**
 * One event of a subscription as the client receives it: the server yields `tracked(id, event)`,
 * and tRPC sends the last `id` back as `lastEventId` when it resubscribes after a reconnect.
 */
export interface TrackedEvent<TData> {
  id: string;
  data: TData;
}

/** A procedure as the server builds it (subscriptions as tRPC types a `tracked()` generator). */
type ProcedureOf<P extends WireProcedure> = P['kind'] extends 'query'
  ? TRPCQueryProcedure<Def<P, z.output<P['output']>>>
  : P['kind'] extends 'mutation'
    ? TRPCMutationProcedure<Def<P, z.output<P['output']>>>
    : TRPCSubscriptionProcedure<Def<P, AsyncIterable<TrackedEvent<z.output<P['output']>>, void>>>;

type Namespace<K> = K extends `${infer N}.${string}` ? N : never;

/** `{ session: { create, get, … }, node: { … }, … }` from the dotted names. */
export type AppRouterRecord = {
  [N in Namespace<keyof Wire>]: {
    [K in keyof Wire as K extends `${N}.${infer P}` ? P : never]: ProcedureOf<Wire[K]>;
  };
};

/** The root types the client reads: superjson on the wire, Tether's error shape. */
export interface AppRouterRoot {
  ctx: object;
  meta: object;
  errorShape: TetherErrorWireShape;
  transformer: true;
}

/** The API's type: pass it to tRPC (`createTRPCClient<AppRouter>`, React Query integrations). */
export type AppRouter = TRPCBuiltRouter<AppRouterRoot, AppRouterRecord>;
