/**
 * Compile-time proof that the client's `AppRouter` (built from the wire contracts) and the
 * server's router describe the same API: the same procedure names, kinds, inputs and outputs,
 * and the same error shape. `pnpm typecheck` fails on any drift.
 */
import type { AppRouter as ServerRouter } from '@tether/control-plane/trpc';
import type { inferRouterError } from '@trpc/server';
import type { AppRouter } from '../src/router.js';

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Mutual assignability, for structurally equal types declared twice (interfaces). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;

type Flat<R> = {
  [N in keyof R & string]: R[N] extends { _def: { procedure: true } }
    ? never
    : {
        [K in keyof R[N] & string as `${N}.${K}`]: R[N][K] extends {
          _def: { type: infer T; $types: { input: infer I; output: infer O } };
        }
          ? { type: T; input: I; output: Yields<O> }
          : never;
      };
}[keyof R & string];
/** A subscription's events as a plain object type (tRPC's `TrackedData` is an interface). */
type Yields<O> =
  O extends AsyncIterable<infer Y, infer R, infer N>
    ? { yields: { [K in keyof Y]: Y[K] }; returns: R; next: N }
    : O;
type Merge<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void
  ? { [K in keyof I]: I[K] }
  : never;

type ServerApi = Merge<Flat<ServerRouter['_def']['record']>>;
type ClientApi = Merge<Flat<AppRouter['_def']['record']>>;

type ServerError = inferRouterError<ServerRouter>;
type ClientError = inferRouterError<AppRouter>;

/** Procedures whose kind, input or output differ (hover it when the assertion fails). */
type Drift = {
  [
    K in keyof ServerApi as Equal<ServerApi[K], ClientApi[K & keyof ClientApi]> extends true
      ? never
      : K
  ]: { server: ServerApi[K]; client: ClientApi[K & keyof ClientApi] };
};

export type Parity = [
  Assert<Equal<keyof ServerApi, keyof ClientApi>>,
  Assert<Equal<keyof Drift, never>>,
  Assert<Same<ServerError, ClientError>>,
  Assert<Same<ServerError['data'], ClientError['data']>>,
  Assert<
    Equal<ServerError['data']['tetherError']['code'], ClientError['data']['tetherError']['code']>
  >,
  Assert<Equal<ServerRouter['_def']['_config']['$types']['transformer'], true>>,
];
