/**
 * `invoke`: run a capability on a node and get its result, in one call. It invokes
 * (`command.invoke`, with a fresh idempotency key unless given), follows the command
 * (`command.watch`, which yields it as it is now and after every change) until it ends, and
 * resolves with the node's output — or rejects with a `CommandError` saying how it ended
 * (failed, expired, cancelled, denied). Refusals of the invocation itself (permission, no
 * eligible node, invalid input…) reject with the server's typed error as any call does.
 *
 * Where a subscription cannot be opened (e.g. over HTTP on a runtime without EventSource) it
 * follows the command by polling `command.get` instead.
 */
import {
  isTerminalCommandState,
  type CommandErrorView,
  type CommandId,
  type CommandState,
  type CommandView,
  type NodeId,
  type SessionId,
} from '@tether/contracts';
import type { TetherClient } from './client.js';
import { isTetherError } from './errors.js';

/** Which node: one by id, or any eligible online node declaring the capability. */
export type InvokeTarget = { nodeId: string } | { sessionId?: string | undefined };

export interface InvokeRequest {
  target: InvokeTarget;
  capability: string;
  /** Required when the capability lists `commands` (one of them). */
  command?: string | undefined;
  /** JSON, checked against the capability's `inputSchema`. Default `{}`. */
  input?: unknown;
  /** The command's deadline from now (covers approval, delivery and run). Server default 60 s. */
  timeoutMs?: number | undefined;
  /** The same key again returns the same command (a retried call never runs twice). Default: a new UUID. */
  idempotencyKey?: string | undefined;
}

export interface InvokeOptions {
  /** Stops waiting (rejects with the signal's reason); the command itself goes on. */
  signal?: AbortSignal | undefined;
  /** Called with the command after the invocation and at every change (e.g. `awaiting_approval`). */
  onUpdate?: ((command: CommandView) => void) | undefined;
  /** `command.get` interval when polling instead of watching. Default 500 ms. */
  pollIntervalMs?: number | undefined;
  /** `'watch'` (default: subscription, polling if it cannot be opened) or `'poll'`. */
  follow?: 'watch' | 'poll' | undefined;
}

/** The states a command ends in without a result. */
export type CommandEndState = Extract<CommandState, 'failed' | 'expired' | 'cancelled' | 'denied'>;

/**
 * A command that ended without succeeding. `code`: the node's error code when it failed (or
 * `command.failed` when it gave none), else `command.expired` / `command.cancelled` /
 * `command.denied`. `command` is the final view (error, who decided, times).
 */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  readonly commandId: string;
  readonly state: CommandEndState;
  readonly code: string;
  readonly error: CommandErrorView | null;
  readonly command: CommandView;

  constructor(command: CommandView) {
    const state = command.state as CommandEndState;
    const code =
      state === 'failed' ? (command.error?.code ?? 'command.failed') : `command.${state}`;
    const why = command.error?.message ? `: ${command.error.message}` : '';
    super(`command ${command.commandId} (${command.capability}) ${state}${why}`);
    this.commandId = command.commandId;
    this.state = state;
    this.code = code;
    this.error = command.error;
    this.command = command;
  }
}

/** True for the error `invoke` rejects with when a command ended without succeeding. */
export function isCommandError(error: unknown, state?: CommandEndState): error is CommandError {
  return error instanceof CommandError && (state === undefined || error.state === state);
}

function newKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `k-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('invoke: aborted');
}

/** Polls `command.get` until the command ends. */
async function poll(
  client: TetherClient,
  commandId: CommandId,
  options: InvokeOptions,
  last: CommandState | null,
): Promise<CommandView> {
  const interval = Math.max(10, options.pollIntervalMs ?? 500);
  let seen = last;
  for (;;) {
    if (options.signal?.aborted) throw abortReason(options.signal);
    const view = await client.command.get.query({ commandId });
    if (view.state !== seen) {
      seen = view.state;
      options.onUpdate?.(view);
    }
    if (isTerminalCommandState(view.state)) return view;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, interval);
      function done(): void {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', done);
        resolve();
      }
      options.signal?.addEventListener('abort', done, { once: true });
    });
  }
}

/** Follows `command.watch` until the command ends; polls if the subscription cannot be opened. */
function watch(
  client: TetherClient,
  commandId: CommandId,
  options: InvokeOptions,
): Promise<CommandView> {
  return new Promise<CommandView>((resolve, reject) => {
    let last: CommandState | null = null;
    let settled = false;
    const finish = (action: () => void): void => {
      if (settled) return;
      settled = true;
      subscription.unsubscribe();
      options.signal?.removeEventListener('abort', onAbort);
      action();
    };
    const onAbort = (): void => finish(() => reject(abortReason(options.signal!)));
    const subscription = client.command.watch.subscribe(
      { commandId },
      {
        onData: ({ data }) => {
          if (data.state !== last) {
            last = data.state;
            options.onUpdate?.(data);
          }
          if (isTerminalCommandState(data.state)) finish(() => resolve(data));
        },
        onError: (error) => {
          // The server said no (not found, forbidden…): that is the answer. Anything else (no
          // EventSource, a dropped stream): follow it by polling instead.
          if (isTetherError(error)) finish(() => reject(error));
          else finish(() => void poll(client, commandId, options, last).then(resolve, reject));
        },
        onComplete: () => {
          if (!settled) {
            finish(() => void poll(client, commandId, options, last).then(resolve, reject));
          }
        },
      },
    );
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Waits until command `commandId` ends; resolves with its final view, whatever the state. */
export function waitForCommand(
  client: TetherClient,
  commandId: string,
  options: InvokeOptions = {},
): Promise<CommandView> {
  const id = commandId as CommandId;
  return options.follow === 'poll' ? poll(client, id, options, null) : watch(client, id, options);
}

/**
 * Invokes `capability` on the target node and resolves with its output once it succeeded;
 * rejects with a `CommandError` when it failed, expired, was cancelled or denied.
 */
export async function invoke<T = unknown>(
  client: TetherClient,
  request: InvokeRequest,
  options: InvokeOptions = {},
): Promise<T> {
  const command = await invokeAndWait(client, request, options);
  if (command.state === 'succeeded') return command.output as T;
  throw new CommandError(command);
}

/** `invoke`, resolving with the final command view whatever its state (no CommandError). */
export async function invokeAndWait(
  client: TetherClient,
  request: InvokeRequest,
  options: InvokeOptions = {},
): Promise<CommandView> {
  const target =
    'nodeId' in request.target
      ? { nodeId: request.target.nodeId as NodeId }
      : {
          capability: request.capability,
          ...(request.target.sessionId !== undefined
            ? { sessionId: request.target.sessionId as SessionId }
            : {}),
        };
  const invoked = await client.command.invoke.mutate({
    target,
    capability: request.capability,
    ...(request.command !== undefined ? { command: request.command } : {}),
    input: (request.input ?? {}) as never,
    ...(request.timeoutMs !== undefined ? { timeoutMs: request.timeoutMs } : {}),
    idempotencyKey: request.idempotencyKey ?? newKey(),
  });
  return waitForCommand(client, invoked.commandId, options);
}
