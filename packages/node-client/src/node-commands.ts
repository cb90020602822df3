/**
 * A node's commands on its connection: the `CommandDispatcher` (handlers, concurrency, dedup,
 * see `commands.ts`) wired to the node — its `runtimenode.commands` subscription (one per
 * connection, resumed after every reconnect, only while there are handlers), acknowledgements and
 * results sent on the ready connection, and the dispatcher's events as the node's `command_*`
 * events. A result that cannot be sent now (not connected) waits for the next subscription.
 */
import type {
  CapabilityDescriptor,
  CommandId,
  CommandResultInput,
  NodeCommandMessage,
} from '@tether/contracts';
import { ConnectionLost } from './call.js';
import {
  CommandDispatcher,
  DispatchRefused,
  type CommandEvents,
  type CommandOutcome,
} from './commands.js';
import { isTerminal, isTransportError, toTetherError } from './errors.js';
import type { TetherNodeEvents } from './node-types.js';
import type { Connection } from './transport.js';
import type { Emitter, TetherLogger } from './util.js';

/** What the commands need of their node. */
export interface CommandsHost {
  readonly emitter: Emitter<TetherNodeEvents>;
  readonly log: TetherLogger;
  /** The node's connection when it is open and past its connect sequence, else null. */
  readyConnection(): Connection | null;
  /** `conn` is still the node's connection. */
  isCurrent(conn: Connection): boolean;
  /** A call on `conn` (`callOn` with the node's call timeout). */
  call<T>(conn: Connection, call: () => Promise<T>): Promise<T>;
}

export class NodeCommands {
  readonly #host: CommandsHost;
  readonly dispatcher: CommandDispatcher;
  /** Descriptors of the capabilities with a command handler (declared with the node's own). */
  readonly descriptors = new Map<string, CapabilityDescriptor>();
  /** The commands subscription and the connection it runs on. */
  #subscription: { conn: Connection; unsubscribe(): void } | null = null;

  constructor(host: CommandsHost, commandMemory: number | undefined) {
    this.#host = host;
    this.dispatcher = new CommandDispatcher(
      {
        ack: async (commandId) => {
          const { state } = await this.#call((client) =>
            client.runtimenode.commandack.mutate({ commandId: commandId }),
          );
          // Anything but running (cancelled, expired…): the server does not want it run.
          if (state !== 'running') {
            throw new DispatchRefused('command.not_open', `the command is ${state}`);
          }
        },
        report: (commandId, outcome) =>
          this.#call((client) =>
            client.runtimenode.commandresult.mutate(resultInput(commandId, outcome)),
          ).then(() => undefined),
        emit: (event, arg) => {
          const at = Date.now();
          const emitter = host.emitter;
          switch (event) {
            case 'received':
              emitter.emit('command_received', {
                ...(arg as Parameters<CommandEvents['received']>[0]),
                at,
              });
              break;
            case 'started':
              emitter.emit('command_started', {
                ...(arg as Parameters<CommandEvents['started']>[0]),
                at,
              });
              break;
            case 'finished':
              emitter.emit('command_finished', {
                ...(arg as Parameters<CommandEvents['finished']>[0]),
                at,
              });
              break;
            case 'cancelled':
              emitter.emit('command_cancelled', {
                ...(arg as Parameters<CommandEvents['cancelled']>[0]),
                at,
              });
              break;
          }
        },
      },
      commandMemory !== undefined ? { finishedMemory: commandMemory } : {},
    );
  }

  /** Subscribes to commands on `conn` when there are handlers (once per connection). */
  sync(conn: Connection, nodeId: string): void {
    if (!this.dispatcher.hasHandlers) {
      this.#subscription?.unsubscribe();
      this.#subscription = null;
      return;
    }
    if (this.#subscription?.conn === conn) return;
    this.#subscription?.unsubscribe();
    const subscription = conn.client.runtimenode.commands.subscribe(
      { nodeId: nodeId },
      {
        onStarted: () => {
          // Results finished while the connection was down go out now.
          this.dispatcher.flush();
        },
        onData: ({ data }) => this.#onMessage(data),
        onError: (raw) => {
          if (!this.#host.isCurrent(conn) || !conn.isOpen) return; // the connection's loss says it all
          const error = toTetherError(raw);
          this.#host.log.warn({ nodeId, code: error.code }, 'commands subscription failed');
          if (this.#subscription?.conn === conn) this.#subscription = null;
          if (isTerminal(error))
            conn.lose({ kind: 'call_failed', code: error.code, message: error.message, error });
        },
      },
    );
    this.#subscription = { conn, unsubscribe: () => subscription.unsubscribe() };
  }

  /** `conn` is over: its subscription went with it (the next connection subscribes again). */
  connectionEnded(conn: Connection): void {
    if (this.#subscription?.conn === conn) this.#subscription = null;
  }

  #onMessage(message: NodeCommandMessage): void {
    if (message.kind === 'cancel') this.dispatcher.cancel(message.commandId, message.reason);
    else this.dispatcher.deliver(message.command);
  }

  /**
   * A command call on the ready connection. Not connected / lost → a plain Error (not sent: a
   * redelivery will come). The server's refusal of a command that is over → DispatchRefused.
   */
  async #call<T>(call: (client: Connection['client']) => Promise<T>): Promise<T> {
    const conn = this.#host.readyConnection();
    if (!conn) throw new Error('not connected');
    try {
      return await this.#host.call(conn, () => call(conn.client));
    } catch (raw) {
      if (raw instanceof ConnectionLost) throw new Error('connection lost');
      const error = toTetherError(raw);
      if (isTransportError(error) || error.retryable) throw error;
      throw new DispatchRefused(error.code, error.message);
    }
  }
}

/** `runtimenode.commandresult`'s input for an outcome. */
function resultInput(commandId: string, outcome: CommandOutcome): CommandResultInput {
  const id = commandId as CommandId;
  return outcome.ok
    ? { commandId: id, ok: true, output: outcome.output as CommandResultJson }
    : { commandId: id, ok: false, error: outcome.error };
}

type CommandResultJson = CommandResultInput['output'];
