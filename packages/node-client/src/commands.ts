/**
 * The node's side of commands: handlers registered per capability, the commands the server
 * delivers dispatched to them, and their results reported back.
 *
 * For each delivered command: known already (running, queued, or finished and remembered) →
 * never run again (a finished one has its result reported again: the server redelivers what it
 * has not seen answered); no handler for its capability → answered with a `command.unhandled`
 * error; else queued behind the capability's concurrency limit, then acknowledged
 * (`runtimenode.commandack`, the command goes `running`) and only then run, with an
 * `AbortSignal` that aborts on cancel and at the deadline. The handler's value (or thrown error,
 * as `{ code, message }`) is reported with `runtimenode.commandresult`. A result that could not
 * be reported (the connection was lost) is kept and reported again when a connection is back.
 *
 * The dispatcher knows nothing of sockets: the node gives it `ack` and `report` functions, which
 * throw when there is no connection.
 */

/** What a handler receives besides the input. */
export interface CommandContext {
  commandId: string;
  capability: string;
  /** The command name within the capability (from its `commands` allow-list), if any. */
  command: string | null;
  /** Aborted when the command is cancelled or its deadline passes (`signal.reason` says which). */
  signal: AbortSignal;
  /** When the server gives up on the command (epoch ms), if it said. */
  deadline: number | null;
  /** 1 for the first delivery; higher when the server redelivers. */
  attempt: number;
}

/** Handles one capability's commands; its return value (JSON) is the command's output. */
export type CommandHandler<I = unknown> = (input: I, context: CommandContext) => unknown;

export interface CommandHandlerOptions<I = unknown> {
  /** Commands of this capability running at once on this node; the rest wait. Default 1. */
  concurrency?: number;
  /** Commands waiting beyond `concurrency`; more are answered `command.busy`. Default 1 000. */
  maxQueued?: number;
  /**
   * Turns the raw input into the handler's; throwing answers the command `request.invalid`
   * (e.g. `(raw) => MySchema.parse(raw)`). Default: the input as delivered.
   */
  parseInput?: (raw: unknown) => I;
}

/** A command as delivered to the node. */
export interface DeliveredCommand {
  commandId: string;
  capability: string;
  command?: string | null | undefined;
  input: unknown;
  deadline?: Date | string | number | null | undefined;
  attempt?: number | undefined;
}

export type CommandOutcome =
  { ok: true; output: unknown } | { ok: false; error: { code: string; message: string } };

/** The reasons a handler's signal aborts with (`signal.reason`). */
export class CommandAbortedError extends Error {
  override readonly name = 'CommandAbortedError';
  constructor(
    readonly code: 'command.cancelled' | 'command.deadline_exceeded' | 'command.node_stopped',
    message: string,
  ) {
    super(message);
  }
}

export interface CommandEvents {
  /** A command was delivered; `duplicate`: it was already known (not run again). */
  received: (e: { commandId: string; capability: string; duplicate: boolean }) => void;
  /** The handler started (after the acknowledgement). */
  started: (e: { commandId: string; capability: string }) => void;
  /** The handler ended; `reported`: the server has the result. */
  finished: (e: {
    commandId: string;
    capability: string;
    outcome: CommandOutcome;
    reported: boolean;
  }) => void;
  /** The server cancelled a command this node knows. */
  cancelled: (e: { commandId: string; running: boolean }) => void;
}

export interface DispatcherIo {
  /** Acknowledges (→ running). Throws a `DispatchRefused` when the server says no, anything else if not sent. */
  ack(commandId: string): Promise<void>;
  /** Reports the outcome. Throws `DispatchRefused` when the server refuses it for good. */
  report(commandId: string, outcome: CommandOutcome): Promise<void>;
  emit<K extends keyof CommandEvents>(event: K, ...args: Parameters<CommandEvents[K]>): void;
  now?: () => number;
}

/** The server answered, and the answer is final (the command is over, or not this node's). */
export class DispatchRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Registration {
  handler: CommandHandler;
  concurrency: number;
  maxQueued: number;
  parseInput: ((raw: unknown) => unknown) | undefined;
  running: number;
  queue: Job[];
}

interface Job {
  delivered: DeliveredCommand;
  controller: AbortController;
  state: 'queued' | 'acking' | 'running';
  deadlineTimer?: NodeJS.Timeout;
}

export const DEFAULT_FINISHED_MEMORY = 1_000;

function toEpoch(value: DeliveredCommand['deadline']): number | null {
  if (value === null || value === undefined) return null;
  const ms = value instanceof Date ? value.getTime() : new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}

const ERROR_CODE = /^[a-z][a-z0-9_.-]{0,127}$/;

/** A thrown non-Error object, as text (never throws). */
function describe(value: object): string {
  try {
    return JSON.stringify(value) ?? 'error';
  } catch {
    return 'error';
  }
}

/** A thrown value as the `{ code, message }` the server stores. */
export function errorOutcome(error: unknown): CommandOutcome {
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    const text =
      typeof message === 'string' && message !== ''
        ? message
        : error instanceof Error
          ? error.name
          : describe(error);
    return {
      ok: false,
      error: {
        code: typeof code === 'string' && ERROR_CODE.test(code) ? code : 'command.failed',
        message: text.slice(0, 2_000),
      },
    };
  }
  return { ok: false, error: { code: 'command.failed', message: String(error).slice(0, 2_000) } };
}

/** The handler's return value as JSON (undefined → null); not JSON → a failed outcome. */
function outputOutcome(value: unknown): CommandOutcome {
  if (value === undefined) return { ok: true, output: null };
  try {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError('not JSON');
    return { ok: true, output: JSON.parse(text) as unknown };
  } catch (error) {
    return {
      ok: false,
      error: {
        code: 'command.invalid_output',
        message: `the handler returned a value that is not JSON: ${error instanceof Error ? error.message : String(error)}`,
      },
    };
  }
}

export class CommandDispatcher {
  readonly #io: DispatcherIo;
  readonly #registrations = new Map<string, Registration>();
  /** Queued, acknowledging or running. */
  readonly #active = new Map<string, Job>();
  /** Finished command ids and their outcomes, oldest first (bounded). */
  readonly #finished = new Map<string, { capability: string; outcome: CommandOutcome }>();
  /** Finished but the server does not have the result yet. */
  readonly #unreported = new Set<string>();
  readonly #memory: number;
  #stopped = false;

  constructor(io: DispatcherIo, options: { finishedMemory?: number } = {}) {
    this.#io = io;
    this.#memory = Math.max(1, options.finishedMemory ?? DEFAULT_FINISHED_MEMORY);
  }

  get capabilities(): string[] {
    return [...this.#registrations.keys()];
  }

  get hasHandlers(): boolean {
    return this.#registrations.size > 0;
  }

  /** Commands queued or running now. */
  get activeCount(): number {
    return this.#active.size;
  }

  register<I>(capability: string, handler: CommandHandler<I>, options: CommandHandlerOptions<I>) {
    if (this.#registrations.has(capability)) {
      throw new TypeError(`onCommand: a handler for ${capability} is already registered`);
    }
    const concurrency = options.concurrency ?? 1;
    const maxQueued = options.maxQueued ?? 1_000;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new TypeError('onCommand: concurrency must be a positive integer');
    }
    if (!Number.isInteger(maxQueued) || maxQueued < 0) {
      throw new TypeError('onCommand: maxQueued must be a non-negative integer');
    }
    this.#registrations.set(capability, {
      handler: handler as CommandHandler,
      concurrency,
      maxQueued,
      parseInput: options.parseInput,
      running: 0,
      queue: [],
    });
  }

  unregister(capability: string): void {
    this.#registrations.delete(capability);
  }

  /** A command from the server. */
  deliver(delivered: DeliveredCommand): void {
    const { commandId, capability } = delivered;
    const finished = this.#finished.get(commandId);
    if (finished) {
      this.#io.emit('received', { commandId, capability, duplicate: true });
      void this.#report(commandId, finished.capability, finished.outcome);
      return;
    }
    if (this.#active.has(commandId)) {
      this.#io.emit('received', { commandId, capability, duplicate: true });
      return;
    }
    this.#io.emit('received', { commandId, capability, duplicate: false });
    const registration = this.#registrations.get(capability);
    if (!registration || this.#stopped) {
      this.#finish(commandId, capability, {
        ok: false,
        error: {
          code: 'command.unhandled',
          message: this.#stopped
            ? 'the node is stopping'
            : `this node has no handler for capability ${capability}`,
        },
      });
      return;
    }
    if (registration.queue.length >= registration.maxQueued) {
      this.#finish(commandId, capability, {
        ok: false,
        error: {
          code: 'command.busy',
          message: `${registration.running} ${capability} commands running and ${registration.queue.length} waiting on this node`,
        },
      });
      return;
    }
    const job: Job = { delivered, controller: new AbortController(), state: 'queued' };
    this.#active.set(commandId, job);
    const deadline = toEpoch(delivered.deadline);
    if (deadline !== null) {
      const now = (this.#io.now ?? Date.now)();
      job.deadlineTimer = setTimeout(
        () => this.#abort(job, 'command.deadline_exceeded', 'the command passed its deadline'),
        Math.max(0, deadline - now),
      );
      job.deadlineTimer.unref?.();
    }
    registration.queue.push(job);
    this.#pump(capability);
  }

  /** The server ended `commandId` (cancelled, or expired: its deadline passed). */
  cancel(commandId: string, reason: 'cancelled' | 'expired' = 'cancelled'): void {
    const job = this.#active.get(commandId);
    if (!job) return;
    this.#io.emit('cancelled', { commandId, running: job.state !== 'queued' });
    if (reason === 'expired') {
      this.#abort(job, 'command.deadline_exceeded', 'the command passed its deadline');
    } else {
      this.#abort(job, 'command.cancelled', 'the command was cancelled');
    }
  }

  /** Reports again every result the server has not confirmed (after a reconnect). */
  flush(): void {
    for (const commandId of [...this.#unreported]) {
      const finished = this.#finished.get(commandId);
      if (finished) void this.#report(commandId, finished.capability, finished.outcome);
      else this.#unreported.delete(commandId);
    }
  }

  /** Aborts everything queued or running (the node stops). */
  stop(): void {
    this.#stopped = true;
    for (const job of [...this.#active.values()]) {
      this.#abort(job, 'command.node_stopped', 'the node is stopping');
    }
  }

  #abort(job: Job, code: CommandAbortedError['code'], message: string): void {
    clearTimeout(job.deadlineTimer);
    if (job.controller.signal.aborted) return;
    job.controller.abort(new CommandAbortedError(code, message));
    if (job.state === 'queued') {
      // Never started: drop it from the queue. Its outcome is remembered so that a redelivery
      // does not start it; the server already knows (it cancelled or expired it).
      const registration = this.#registrations.get(job.delivered.capability);
      if (registration) registration.queue = registration.queue.filter((j) => j !== job);
      this.#active.delete(job.delivered.commandId);
      this.#remember(job.delivered.commandId, job.delivered.capability, {
        ok: false,
        error: { code, message },
      });
    }
    // Acknowledging or running: the handler sees the signal; its end reports as usual.
  }

  #pump(capability: string): void {
    const registration = this.#registrations.get(capability);
    if (!registration) return;
    while (registration.running < registration.concurrency && registration.queue.length > 0) {
      const job = registration.queue.shift()!;
      registration.running++;
      void this.#run(registration, job).finally(() => {
        registration.running--;
        this.#pump(capability);
      });
    }
  }

  async #run(registration: Registration, job: Job): Promise<void> {
    const { commandId, capability } = job.delivered;
    job.state = 'acking';
    try {
      await this.#io.ack(commandId);
    } catch (error) {
      clearTimeout(job.deadlineTimer);
      this.#active.delete(commandId);
      if (error instanceof DispatchRefused) {
        // The server will not have it run (cancelled, expired, not this node's): remember that.
        this.#remember(commandId, capability, {
          ok: false,
          error: { code: error.code, message: error.message },
        });
      }
      // Not sent (no connection): forgotten, so the redelivery after the reconnect runs it.
      return;
    }
    job.state = 'running';
    this.#io.emit('started', { commandId, capability });
    let outcome: CommandOutcome;
    const signal = job.controller.signal;
    try {
      if (signal.aborted) throw signal.reason;
      let input: unknown = job.delivered.input;
      if (registration.parseInput) {
        try {
          input = registration.parseInput(input);
        } catch (error) {
          throw Object.assign(new Error(error instanceof Error ? error.message : String(error)), {
            code: 'request.invalid',
          });
        }
      }
      const value = await registration.handler(input, {
        commandId,
        capability,
        command: job.delivered.command ?? null,
        signal,
        deadline: toEpoch(job.delivered.deadline),
        attempt: job.delivered.attempt ?? 1,
      });
      // A handler that ignored its signal and returned anyway: the abort decides.
      outcome = signal.aborted ? errorOutcome(signal.reason) : outputOutcome(value);
    } catch (error) {
      outcome = errorOutcome(signal.aborted ? signal.reason : error);
    }
    clearTimeout(job.deadlineTimer);
    this.#active.delete(commandId);
    this.#finish(commandId, capability, outcome);
  }

  #remember(commandId: string, capability: string, outcome: CommandOutcome): void {
    this.#finished.set(commandId, { capability, outcome });
    while (this.#finished.size > this.#memory) {
      const oldest = this.#finished.keys().next().value!;
      this.#finished.delete(oldest);
      this.#unreported.delete(oldest);
    }
  }

  #finish(commandId: string, capability: string, outcome: CommandOutcome): void {
    this.#remember(commandId, capability, outcome);
    this.#unreported.add(commandId);
    void this.#report(commandId, capability, outcome, true);
  }

  async #report(
    commandId: string,
    capability: string,
    outcome: CommandOutcome,
    first = false,
  ): Promise<void> {
    let reported = false;
    try {
      await this.#io.report(commandId, outcome);
      reported = true;
      this.#unreported.delete(commandId);
    } catch (error) {
      // Refused for good (the command is already over on the server): nothing to report again.
      if (error instanceof DispatchRefused) this.#unreported.delete(commandId);
      else this.#unreported.add(commandId);
    }
    if (first) this.#io.emit('finished', { commandId, capability, outcome, reported });
  }
}
