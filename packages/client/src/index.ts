/**
 * @tether/client: the one package a TypeScript consumer of Tether installs. The typed client,
 * the API's `AppRouter` type, typed error checks and the wire contracts (Zod schemas and their
 * types, the error registry, ids, the version comparator), bundled so that nothing of the server
 * is needed to compile against it.
 *
 * `isTetherError` here is the check for a call's error (`TRPCClientError` with a registry code);
 * it replaces the contracts' `instanceof TetherError` check of the same name.
 */
export * from '@tether/contracts';
export {
  createTetherClient,
  createTetherWSClient,
  tetherEndpoints,
  tetherLinks,
  type CreateTetherClientOptions,
  type EventSourceConstructor,
  type TetherClient,
  type TetherConnectionOptions,
  type TetherTransport,
  type TetherWSClientOptions,
} from './client.js';
export { isTetherError, type TetherClientError } from './errors.js';
export {
  CommandError,
  invoke,
  invokeAndWait,
  isCommandError,
  waitForCommand,
  type CommandEndState,
  type InvokeOptions,
  type InvokeRequest,
  type InvokeTarget,
} from './invoke.js';
export type {
  AppRouter,
  AppRouterRecord,
  AppRouterRoot,
  TetherErrorWireShape,
  TrackedEvent,
} from './router.js';
