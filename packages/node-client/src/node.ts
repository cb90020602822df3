/**
 * `createTetherNode`: a runtime node's life on one WebSocket at a time.
 *
 *   idle ─start()→ [enrolling →] connecting → attached → online ⇄ reconnecting … → stopped
 *                                                    any state ─terminal error→ terminated
 *
 * Each connection opens with the credential and, once the node has an attachment, a resume claim
 * (attachment, session, node version, capabilities digest, health) in the upgrade request. The
 * server answers in the 101 response what `system.info` would (heartbeat cadence…) and whether it
 * resumed the attachment: resumed → online at once, no call; otherwise `runtimenode.attach` (if a
 * session is given: capabilities, node version, health) → `runtimenode.capabilityupdate` with
 * `healthChanges` (only when the attachment is not already at the node's health, capabilities are
 * non-empty and the node is not read-only). Then beats at the advertised cadence ±10% jitter. A
 * server that sends no handshake answer is asked `system.info` first, as before. A lost connection (closed, failed to open, the server's
 * reconnect notification, a call timeout) is retried after a full-jitter exponential backoff
 * (`backoff.ts`), and the whole sequence runs again. Terminal conditions stop every retry and
 * close the socket: a terminal WebSocket close code (`WS_CLOSE.CREDENTIAL_REVOKED`) and the
 * errors in `TERMINAL_CODES`.
 *
 * A 401 at the upgrade (unknown or revoked credential) is terminal (`auth.unauthenticated`).
 *
 * Secrets: the token goes only into the upgrade's `Authorization` header; it is never logged nor
 * put in an event.
 */
import {
  Capabilities as CapabilitiesSchema,
  CapabilityName as CapabilityNameSchema,
  type CapabilityDescriptor,
  CONTRACT_VERSION,
  EventEnvelopeVersion,
  SessionId as SessionIdSchema,
  TetherError,
  type AttachOutput,
  type Capabilities,
  type CapabilityUpdateOutput,
  type CommandId,
  type CommandResultInput,
  type NodeCommandMessage,
  type HeartbeatMetrics,
  type AttachmentState,
  type ResumeClaim,
  type RuntimeNodeHealthState,
  type SystemInfoOutput,
} from '@tether/contracts';
import { capabilitiesDigest } from '@tether/contracts/node';
import { Backoff, type BackoffOptions } from './backoff.js';
import {
  CommandDispatcher,
  DispatchRefused,
  type CommandEvents,
  type CommandHandler,
  type CommandHandlerOptions,
  type CommandOutcome,
} from './commands.js';
import type { NodeCredentials } from './credentials.js';
import { enrollWithKey, type EnrollWithKeyOptions } from './enroll.js';
import {
  isTerminal,
  isTransportError,
  retryAfterMs,
  toTetherError,
  transportError,
} from './errors.js';
import { MetricsCollector } from './metrics.js';
import { processScheduler, type ScheduledTask } from './scheduler.js';
import { terminationFor, type TerminationReason } from './termination.js';
import { Connection, type LossCause } from './transport.js';
import { Emitter, delay, normaliseBaseUrl, silentLogger, type TetherLogger } from './util.js';

export type NodeConnectionState =
  | 'idle'
  | 'enrolling'
  | 'connecting'
  | 'attached'
  | 'online'
  | 'reconnecting'
  | 'stopped'
  | 'terminated';

/** Enroll on `start()` with an enrollment key (the node's identity is created then). */
export type EnrollmentOptions = Omit<
  EnrollWithKeyOptions,
  'url' | 'signal' | 'client' | 'capabilities' | 'nodeVersion' | 'retry'
>;

interface CommonOptions {
  /** Server base URL, http(s)://host:port. */
  url: string;
  /**
   * This node's version (`MAJOR.MINOR`), sent with every attach and compared with the session's
   * floor: below it, the node is admitted read-only. Default: the SDK's CONTRACT_VERSION.
   */
  nodeVersion?: string;
  /** Declared at every (re)connect. Default `{}`. */
  capabilities?: Capabilities;
  /** Attach to this session on every (re)connect. Without it the node only declares and beats. */
  sessionId?: string;
  /** Initial reported health. Default 'online'. */
  health?: RuntimeNodeHealthState;
  /** Structured logger (pino-compatible). Default: silent. */
  logger?: TetherLogger;
  /** Reconnect backoff (full jitter). Defaults: base 250 ms, cap 30 s, stable after 10 s. */
  backoff?: Omit<BackoffOptions, 'random' | 'now'>;
  /** Uniform random source in [0, 1) for backoff and heartbeat jitter (tests, simulations). */
  random?: () => number;
  /** Override the server-advertised heartbeat cadence (milliseconds). */
  heartbeatIntervalMs?: number;
  /** Heartbeat jitter as a fraction of the cadence. Default 0.1 (±10%). */
  heartbeatJitter?: number;
  /** Collect machine metrics (CPU, memory, uptime) for every beat. Default false. */
  autoMetrics?: boolean;
  /** Bound on every call; a call that takes longer drops the connection. Default 15 s. */
  callTimeoutMs?: number;
  /** WebSocket opening handshake timeout. Default 10 s. */
  connectTimeoutMs?: number;
  /** Client keep-alive: ping after this much silence. Default 10 s (the server pings every 3 s). */
  keepAliveIntervalMs?: number;
  /** Close the socket when a ping gets no pong in this time. Default 5 s. */
  pongTimeoutMs?: number;
  /** Called with the new credentials after enrolling with `enrollment` (persist them!). */
  onEnrolled?: (credentials: NodeCredentials) => void | Promise<void>;
  /** Finished command ids (and results) remembered to deduplicate redeliveries. Default 1 000. */
  commandMemory?: number;
}

/** `onCommand` options: the handler's limits and the capability's declaration. */
export interface OnCommandOptions<I = unknown> extends CommandHandlerOptions<I> {
  /**
   * The capability's descriptor (description, `inputSchema`, `commands` allow-list…), declared
   * with the node's capabilities. Default `{}`; a descriptor passed in `capabilities` for the
   * same name wins.
   */
  descriptor?: CapabilityDescriptor;
}

/** An existing identity (from `enrollWithKey`, `pair` or `loadCredentials`)… */
interface TokenIdentity {
  /** The node token (`tnd_…`). */
  token: string;
  nodeId: string;
  ownerParticipantId: string;
  enrollment?: undefined;
}

/** …or an enrollment key, used once on `start()`. */
interface EnrollmentIdentity {
  enrollment: EnrollmentOptions;
  token?: undefined;
  nodeId?: undefined;
  ownerParticipantId?: undefined;
}

export type TetherNodeOptions = CommonOptions & (TokenIdentity | EnrollmentIdentity);

export type DisconnectCause = LossCause;

export interface TetherNodeEvents {
  state: (state: NodeConnectionState, previous: NodeConnectionState) => void;
  enrolled: (e: { at: number; nodeId: string }) => void;
  /** A connection attempt starts (one per socket). */
  connecting: (e: { at: number; attempt: number; reconnect: boolean }) => void;
  /** The socket opened. */
  connected: (e: { at: number; attempt: number; connectMs: number }) => void;
  /**
   * Attached to the session (every connection). `downtimeMs`: since the connection was lost.
   * `resumed`: the server resumed the same attachment in the connection's handshake (no attach
   * call was made); false when this connection attached.
   */
  attached: (e: {
    at: number;
    attachment: AttachOutput;
    reconnect: boolean;
    resumed: boolean;
    downtimeMs: number | null;
  }) => void;
  /**
   * This attach ended the node's own stale attachment to another session (its earlier process
   * is gone: presence offline, or held only by this connection); the server recorded it as
   * `runtimenode.detached` with reason `superseded`.
   */
  superseded: (e: { at: number; attachmentId: string; sessionId: string }) => void;
  /**
   * The attach was refused with `runtimenode.attach_conflict`: `live` — another copy of this
   * node (same credential) is connected and attached to `sessionId`; the node retries after
   * the reconnect backoff (up to its cap) until that attachment ends (the other copy stops or
   * detaches, or an owner calls `node.detach`). Not live (the old attachment went stale while
   * the attach ran): the node attaches once more at once, which supersedes it.
   */
  attach_conflict: (e: {
    at: number;
    attachmentId: string | null;
    sessionId: string | null;
    live: boolean;
  }) => void;
  /** The node is online (capabilities declared with health, or beating without a session). */
  online: (e: { at: number; reconnect: boolean; downtimeMs: number | null }) => void;
  /** A connection attempt failed before the node was attached/online. */
  connect_failed: (e: {
    at: number;
    attempt: number;
    cause: LossCause;
    error?: TetherError;
  }) => void;
  /** An established connection was lost. */
  disconnected: (e: { at: number; cause: LossCause; wasOnline: boolean }) => void;
  reconnect_scheduled: (e: { at: number; attempt: number; delayMs: number }) => void;
  heartbeat: (e: {
    at: number;
    healthState: RuntimeNodeHealthState;
    metrics?: HeartbeatMetrics;
  }) => void;
  heartbeat_failed: (e: { at: number; error: TetherError }) => void;
  /** A command was delivered (`duplicate`: already known, not run again). */
  command_received: (e: Parameters<CommandEvents['received']>[0] & { at: number }) => void;
  /** A command's handler started (after its acknowledgement). */
  command_started: (e: Parameters<CommandEvents['started']>[0] & { at: number }) => void;
  /** A command's handler ended; `reported`: the server has its result. */
  command_finished: (e: Parameters<CommandEvents['finished']>[0] & { at: number }) => void;
  /** The server cancelled a command this node had (its handler's signal aborts). */
  command_cancelled: (e: Parameters<CommandEvents['cancelled']>[0] & { at: number }) => void;
  /** Read-only: the session's floor is above this node's version. */
  read_only: (e: { at: number }) => void;
  terminated: (reason: TerminationReason) => void;
}

export interface TetherNodeSnapshot {
  state: NodeConnectionState;
  nodeId: string | null;
  sessionId: string | null;
  health: RuntimeNodeHealthState;
  readOnly: boolean;
  attachment: AttachOutput | null;
  /** The attachment state the server last reported. */
  attachmentState: AttachmentState | null;
  capabilities: Capabilities;
  serverInfo: SystemInfoOutput | null;
  connectAttempts: number;
  /** Successful connections after the first one. */
  reconnects: number;
  heartbeats: number;
  lastHeartbeatAt: number | null;
  /** Capabilities with a command handler. */
  commandCapabilities: string[];
  /** Commands queued or running on this node now. */
  activeCommands: number;
  /** Sockets not yet closed (0 when stopped or terminated). */
  openSockets: number;
  /** When the next connection attempt is due (epoch ms), while waiting out a backoff. */
  nextAttemptAt: number | null;
  termination: TerminationReason | null;
}

export interface TetherNode {
  readonly state: NodeConnectionState;
  readonly nodeId: string | null;
  readonly termination: TerminationReason | null;
  /** Connects (enrolling first if needed); resolves once the first attempt has begun. */
  start(): Promise<void>;
  /** Detaches (if connected), closes the socket, stops every timer. Idempotent. */
  stop(options?: { detach?: boolean; reason?: string }): Promise<void>;
  /**
   * Replaces the declared capabilities. Connected: sends them now and resolves with the server's
   * answer (errors surface as TetherError, e.g. `version.floor_exceeded` when read-only — the
   * node keeps running). Not connected: kept and declared at the next connection (resolves null).
   */
  updateCapabilities(capabilities: Capabilities): Promise<CapabilityUpdateOutput | null>;
  /** Reported health for attachment and beats; sent now when connected. */
  setHealth(
    health: RuntimeNodeHealthState,
    reason?: string,
  ): Promise<CapabilityUpdateOutput | null>;
  /** Collects CPU %, memory used/total and uptime (+ custom gauges) for the next beat. */
  reportMetrics(gauges?: Record<string, number>): HeartbeatMetrics;
  /** Drops the current connection without detaching (as a network failure would); it reconnects. */
  disconnect(reason?: string): void;
  /**
   * Handles `capability`'s commands: declares the capability (with `options.descriptor`),
   * receives its commands over the node's connection (resumed after every reconnect), runs at
   * most `options.concurrency` at once (default 1; the rest wait), and reports what `handler`
   * returns — or throws, as `{ code, message }` — as the command's result. The handler's
   * `signal` aborts when the command is cancelled or its deadline passes. A command delivered
   * again (after a reconnect or a server restart) is never run twice. Returns a function that
   * removes the handler (and the capability, unless `capabilities` declares it).
   */
  onCommand<I = unknown>(
    capability: string,
    handler: CommandHandler<I>,
    options?: OnCommandOptions<I>,
  ): () => void;
  on<K extends keyof TetherNodeEvents>(event: K, listener: TetherNodeEvents[K]): () => void;
  once<K extends keyof TetherNodeEvents>(event: K, listener: TetherNodeEvents[K]): () => void;
  /** Resolves when the state is one of `states` (at once if it already is). */
  waitFor(
    states: NodeConnectionState | readonly NodeConnectionState[],
    options?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<NodeConnectionState>;
  /** The current state, then every change, until stopped/terminated or `signal` aborts. */
  states(signal?: AbortSignal): AsyncIterableIterator<NodeConnectionState>;
  snapshot(): TetherNodeSnapshot;
}

/** Thrown inside a connection's steps when its socket is gone. */
class ConnectionLost extends Error {
  constructor(readonly loss: LossCause) {
    super(`connection lost (${loss.kind})`);
  }
}

const FINAL_STATES: readonly NodeConnectionState[] = ['stopped', 'terminated'];

function isOnlineAttachment(state: AttachmentState | null): boolean {
  return state === 'online' || state === 'degraded';
}

class TetherNodeImpl implements TetherNode {
  readonly #emitter: Emitter<TetherNodeEvents>;
  readonly #log: TetherLogger;
  readonly #url: string;
  readonly #nodeVersion: string;
  readonly #sessionId: string | undefined;
  readonly #enrollment: EnrollmentOptions | undefined;
  readonly #onEnrolled: CommonOptions['onEnrolled'];
  readonly #random: () => number;
  readonly #backoff: Backoff;
  /** How long the server asked the last refused connection attempt to wait, if it did. */
  #serverWaitMs: number | undefined;
  /** Created on first use: a simulator runs thousands of nodes that never report metrics. */
  #metricsCollector: MetricsCollector | undefined;
  readonly #autoMetrics: boolean;
  readonly #heartbeatOverride: number | undefined;
  readonly #heartbeatJitter: number;
  readonly #callTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #keepAliveIntervalMs: number;
  readonly #pongTimeoutMs: number;

  #credentials: NodeCredentials | undefined;
  #state: NodeConnectionState = 'idle';
  #capabilities: Capabilities;
  /** Descriptors of the capabilities with a command handler (declared with `#capabilities`). */
  readonly #handled = new Map<string, CapabilityDescriptor>();
  readonly #dispatcher: CommandDispatcher;
  /** The commands subscription and the connection it runs on. */
  #commands: { conn: Connection; unsubscribe(): void } | null = null;
  #health: RuntimeNodeHealthState;
  #pendingMetrics: HeartbeatMetrics | undefined;
  #conn: Connection | null = null;
  /** The connection is past its connect sequence (attached or beating). */
  #ready = false;
  /** The current connect sequence, so stop() can let it settle before detaching. */
  #connecting: Promise<unknown> | null = null;
  #loop: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  readonly #wake = new AbortController();
  #info: SystemInfoOutput | null = null;
  #attachment: AttachOutput | null = null;
  #attachmentState: AttachmentState | null = null;
  #readOnly = false;
  #termination: TerminationReason | null = null;
  /** The next beat, on the process's shared scheduler (one Node timer for every node). */
  #beatTimer: ScheduledTask | null = null;
  /** The connection the beat timer last beat for (its first beat's phase is drawn wider). */
  #beatConn: Connection | null = null;
  #connectAttempts = 0;
  #connections = 0;
  #heartbeats = 0;
  #lastHeartbeatAt: number | null = null;
  #nextAttemptAt: number | null = null;
  #lostAt: number | null = null;

  constructor(options: TetherNodeOptions) {
    this.#log = options.logger ?? silentLogger;
    this.#emitter = new Emitter((error) =>
      this.#log.error({ err: error }, 'a tether-node event listener threw'),
    );
    if (!options.url) throw new TypeError('createTetherNode: `url` is required');
    this.#url = normaliseBaseUrl(options.url);
    this.#nodeVersion = options.nodeVersion ?? CONTRACT_VERSION;
    if (!EventEnvelopeVersion.safeParse(this.#nodeVersion).success) {
      throw new TypeError(
        `createTetherNode: nodeVersion must be MAJOR.MINOR (got ${this.#nodeVersion})`,
      );
    }
    if (options.sessionId !== undefined && !SessionIdSchema.safeParse(options.sessionId).success) {
      throw new TypeError(`createTetherNode: sessionId must be a UUID (got ${options.sessionId})`);
    }
    this.#sessionId = options.sessionId;
    this.#capabilities = checkCapabilities(options.capabilities ?? {});
    this.#health = options.health ?? 'online';
    if (options.token !== undefined) {
      if (!options.nodeId || !options.ownerParticipantId) {
        throw new TypeError('createTetherNode: `token` needs `nodeId` and `ownerParticipantId`');
      }
      this.#credentials = {
        url: this.#url,
        token: options.token,
        nodeId: options.nodeId,
        ownerParticipantId: options.ownerParticipantId,
      };
    } else if (options.enrollment) {
      this.#enrollment = options.enrollment;
    } else {
      throw new TypeError(
        'createTetherNode: pass `token` (with nodeId, ownerParticipantId) or `enrollment`',
      );
    }
    this.#onEnrolled = options.onEnrolled;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff({ ...options.backoff, random: this.#random });
    this.#autoMetrics = options.autoMetrics ?? false;
    this.#heartbeatOverride = options.heartbeatIntervalMs;
    this.#heartbeatJitter = Math.min(0.5, Math.max(0, options.heartbeatJitter ?? 0.1));
    this.#callTimeoutMs = options.callTimeoutMs ?? 15_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#keepAliveIntervalMs = options.keepAliveIntervalMs ?? 10_000;
    this.#pongTimeoutMs = options.pongTimeoutMs ?? 5_000;
    this.#dispatcher = new CommandDispatcher(
      {
        ack: async (commandId) => {
          const { state } = await this.#commandCall((client) =>
            client.runtimenode.commandack.mutate({ commandId: commandId }),
          );
          // Anything but running (cancelled, expired…): the server does not want it run.
          if (state !== 'running') {
            throw new DispatchRefused('command.not_open', `the command is ${state}`);
          }
        },
        report: (commandId, outcome) =>
          this.#commandCall((client) =>
            client.runtimenode.commandresult.mutate(resultInput(commandId, outcome)),
          ).then(() => undefined),
        emit: (event, arg) => {
          const at = Date.now();
          switch (event) {
            case 'received':
              this.#emitter.emit('command_received', {
                ...(arg as Parameters<CommandEvents['received']>[0]),
                at,
              });
              break;
            case 'started':
              this.#emitter.emit('command_started', {
                ...(arg as Parameters<CommandEvents['started']>[0]),
                at,
              });
              break;
            case 'finished':
              this.#emitter.emit('command_finished', {
                ...(arg as Parameters<CommandEvents['finished']>[0]),
                at,
              });
              break;
            case 'cancelled':
              this.#emitter.emit('command_cancelled', {
                ...(arg as Parameters<CommandEvents['cancelled']>[0]),
                at,
              });
              break;
          }
        },
      },
      options.commandMemory !== undefined ? { finishedMemory: options.commandMemory } : {},
    );
  }

  get state(): NodeConnectionState {
    return this.#state;
  }

  get nodeId(): string | null {
    return this.#credentials?.nodeId ?? null;
  }

  get termination(): TerminationReason | null {
    return this.#termination;
  }

  on<K extends keyof TetherNodeEvents>(event: K, listener: TetherNodeEvents[K]): () => void {
    return this.#emitter.on(event, listener);
  }

  once<K extends keyof TetherNodeEvents>(event: K, listener: TetherNodeEvents[K]): () => void {
    return this.#emitter.once(event, listener);
  }

  snapshot(): TetherNodeSnapshot {
    return {
      state: this.#state,
      nodeId: this.nodeId,
      sessionId: this.#sessionId ?? null,
      health: this.#health,
      readOnly: this.#readOnly,
      attachment: this.#attachment,
      attachmentState: this.#attachmentState,
      capabilities: this.#declared(),
      serverInfo: this.#info,
      connectAttempts: this.#connectAttempts,
      reconnects: Math.max(0, this.#connections - 1),
      heartbeats: this.#heartbeats,
      lastHeartbeatAt: this.#lastHeartbeatAt,
      commandCapabilities: this.#dispatcher.capabilities,
      activeCommands: this.#dispatcher.activeCount,
      openSockets: this.#conn?.openSockets ?? 0,
      nextAttemptAt: this.#nextAttemptAt,
      termination: this.#termination,
    };
  }

  start(): Promise<void> {
    if (this.#state !== 'idle') return Promise.resolve();
    this.#loop = this.#run().catch((error: unknown) => {
      // The loop handles its own errors; anything here is a bug. Never leave a node half-alive.
      this.#log.error({ err: error }, 'tether-node loop failed');
      void this.#conn?.dispose(false);
      this.#terminate({
        code: 'system.internal',
        message: `internal error: ${error instanceof Error ? error.message : String(error)}`,
      });
    });
    return Promise.resolve();
  }

  stop(options: { detach?: boolean; reason?: string } = {}): Promise<void> {
    this.#stopping ??= this.#stop(options);
    return this.#stopping;
  }

  async #stop(options: { detach?: boolean; reason?: string }): Promise<void> {
    if (this.#state === 'idle') {
      this.#setState('stopped');
      return;
    }
    this.#wake.abort();
    // Running handlers are told (their signal aborts); what they report still goes out below.
    this.#dispatcher.stop();
    const conn = this.#conn;
    if (conn && conn.isOpen && options.detach !== false && this.#credentials) {
      // Let an attach in flight land first, so the detach is the last word.
      if (this.#connecting) {
        await Promise.race([this.#connecting.catch(() => undefined), delay(this.#callTimeoutMs)]);
      }
      if (conn.isOpen) {
        const nodeId = this.#credentials.nodeId;
        await this.#step(conn, () =>
          conn.client.runtimenode.detach.mutate({
            nodeId: nodeId,
            reason: (options.reason ?? 'node stopped').slice(0, 512),
          }),
        ).catch((error: unknown) =>
          this.#log.warn({ err: error }, 'detach on stop failed; the server will age the node out'),
        );
      }
    }
    conn?.lose({ kind: 'stopped' });
    await this.#loop;
    if (this.#state !== 'terminated') this.#setState('stopped');
  }

  onCommand<I = unknown>(
    capability: string,
    handler: CommandHandler<I>,
    options: OnCommandOptions<I> = {},
  ): () => void {
    if (!CapabilityNameSchema.safeParse(capability).success) {
      throw new TypeError(`onCommand: ${JSON.stringify(capability)} is not a capability name`);
    }
    if (FINAL_STATES.includes(this.#state)) {
      throw new TypeError(`onCommand: the node is ${this.#state}`);
    }
    const { descriptor = {}, ...handlerOptions } = options;
    const merged = checkCapabilities({ ...this.#declared(), [capability]: descriptor });
    this.#dispatcher.register(capability, handler, handlerOptions);
    this.#handled.set(capability, merged[capability]!);
    this.#handlersChanged();
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.#dispatcher.unregister(capability);
      this.#handled.delete(capability);
      this.#handlersChanged();
    };
  }

  disconnect(reason = 'disconnect requested'): void {
    this.#conn?.lose({ kind: 'dropped', reason });
  }

  async updateCapabilities(capabilities: Capabilities): Promise<CapabilityUpdateOutput | null> {
    const next = checkCapabilities(capabilities);
    const previous = this.#capabilities;
    this.#capabilities = next;
    const conn = this.#readyConnection();
    if (!conn) return null;
    try {
      return await this.#declare(conn);
    } catch (raw) {
      const error = this.#publicError(raw);
      // A refusal leaves the server's view unchanged, so ours goes back too (a later re-attach
      // must not declare what the server refused). Unconfirmed (transport) stays: it is
      // declared at the next connection.
      if (!isTransportError(error)) this.#capabilities = previous;
      throw error;
    }
  }

  async setHealth(
    health: RuntimeNodeHealthState,
    reason?: string,
  ): Promise<CapabilityUpdateOutput | null> {
    this.#health = health;
    const conn = this.#readyConnection();
    if (!conn) return null;
    let result: CapabilityUpdateOutput | null = null;
    try {
      if (this.#sessionId && this.#attachment && Object.keys(this.#declared()).length > 0) {
        result = await this.#declare(conn, reason);
      }
    } catch (raw) {
      throw this.#publicError(raw);
    } finally {
      // Presence follows beats: report the new health now rather than at the next tick.
      if (conn.isOpen) await this.#beat(conn);
    }
    return result;
  }

  reportMetrics(gauges?: Record<string, number>): HeartbeatMetrics {
    const metrics = this.#metrics().collect(gauges);
    this.#pendingMetrics = metrics;
    return metrics;
  }

  async waitFor(
    states: NodeConnectionState | readonly NodeConnectionState[],
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<NodeConnectionState> {
    const wanted: readonly NodeConnectionState[] = typeof states === 'string' ? [states] : states;
    if (wanted.includes(this.#state)) return this.#state;
    if (FINAL_STATES.includes(this.#state)) throw this.#finalStateError(wanted);
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        off();
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const off = this.#emitter.on('state', (state) => {
        if (wanted.includes(state)) {
          cleanup();
          resolve(state);
        } else if (FINAL_STATES.includes(state)) {
          cleanup();
          reject(this.#finalStateError(wanted));
        }
      });
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              cleanup();
              reject(
                new Error(
                  `node did not reach ${wanted.join('|')} within ${options.timeoutMs} ms (state: ${this.#state})`,
                ),
              );
            }, options.timeoutMs);
      const onAbort = (): void => {
        cleanup();
        reject(
          options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'),
        );
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async *states(signal?: AbortSignal): AsyncIterableIterator<NodeConnectionState> {
    const queue: NodeConnectionState[] = [];
    let notify: (() => void) | undefined;
    const off = this.#emitter.on('state', (state) => {
      queue.push(state);
      notify?.();
    });
    const onAbort = (): void => notify?.();
    signal?.addEventListener('abort', onAbort);
    try {
      yield this.#state;
      if (FINAL_STATES.includes(this.#state)) return;
      for (;;) {
        while (queue.length > 0) {
          const state = queue.shift()!;
          yield state;
          if (FINAL_STATES.includes(state)) return;
        }
        if (signal?.aborted) return;
        await new Promise<void>((resolve) => (notify = resolve));
        notify = undefined;
      }
    } finally {
      off();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  /** What the node declares: its capabilities plus those it has handlers for. */
  #declared(): Capabilities {
    if (this.#handled.size === 0) return this.#capabilities;
    return { ...Object.fromEntries(this.#handled), ...this.#capabilities };
  }

  /** A handler was added or removed: declare the new set now, and (un)subscribe. */
  #handlersChanged(): void {
    const conn = this.#readyConnection();
    if (!conn) return;
    if (!this.#readOnly) {
      this.#declare(conn).catch((raw: unknown) => {
        if (raw instanceof ConnectionLost) return; // declared at the next connection
        this.#log.warn(
          { nodeId: this.nodeId, code: this.#publicError(raw).code },
          'declaring the command capabilities failed',
        );
      });
    }
    this.#syncCommands(conn);
  }

  /** Subscribes to commands on `conn` when there are handlers (once per connection). */
  #syncCommands(conn: Connection): void {
    if (!this.#dispatcher.hasHandlers) {
      this.#commands?.unsubscribe();
      this.#commands = null;
      return;
    }
    if (this.#commands?.conn === conn) return;
    this.#commands?.unsubscribe();
    const nodeId = this.#credentials!.nodeId;
    const subscription = conn.client.runtimenode.commands.subscribe(
      { nodeId: nodeId },
      {
        onStarted: () => {
          // Results finished while the connection was down go out now.
          this.#dispatcher.flush();
        },
        onData: ({ data }) => this.#onCommandMessage(data),
        onError: (raw) => {
          if (this.#conn !== conn || !conn.isOpen) return; // the connection's loss says it all
          const error = toTetherError(raw);
          this.#log.warn({ nodeId, code: error.code }, 'commands subscription failed');
          if (this.#commands?.conn === conn) this.#commands = null;
          if (isTerminal(error))
            conn.lose({ kind: 'call_failed', code: error.code, message: error.message });
        },
      },
    );
    this.#commands = { conn, unsubscribe: () => subscription.unsubscribe() };
  }

  #onCommandMessage(message: NodeCommandMessage): void {
    if (message.kind === 'cancel') this.#dispatcher.cancel(message.commandId, message.reason);
    else this.#dispatcher.deliver(message.command);
  }

  /**
   * A command call on the ready connection. Not connected / lost → a plain Error (not sent: a
   * redelivery will come). The server's refusal of a command that is over → DispatchRefused.
   */
  async #commandCall<T>(call: (client: Connection['client']) => Promise<T>): Promise<T> {
    const conn = this.#readyConnection();
    if (!conn) throw new Error('not connected');
    try {
      return await this.#step(conn, () => call(conn.client));
    } catch (raw) {
      if (raw instanceof ConnectionLost) throw new Error('connection lost');
      const error = toTetherError(raw);
      if (isTransportError(error) || error.retryable) throw error;
      throw new DispatchRefused(error.code, error.message);
    }
  }

  #metrics(): MetricsCollector {
    return (this.#metricsCollector ??= new MetricsCollector());
  }

  #finalStateError(wanted: readonly NodeConnectionState[]): Error {
    const why = this.#termination ? `: ${this.#termination.message}` : '';
    return new Error(`node is ${this.#state}${why} (waiting for ${wanted.join('|')})`);
  }

  #setState(next: NodeConnectionState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    this.#log.debug({ nodeId: this.nodeId, from: previous, to: next }, 'tether-node state');
    this.#emitter.emit('state', next, previous);
  }

  #terminate(reason: TerminationReason): void {
    if (this.#termination) return;
    this.#termination = reason;
    this.#wake.abort();
    this.#log.error(
      { nodeId: this.nodeId, code: reason.code, closeCode: reason.closeCode },
      `tether-node terminated: ${reason.message}`,
    );
    this.#setState('terminated');
    this.#emitter.emit('terminated', reason);
  }

  #readyConnection(): Connection | null {
    const conn = this.#conn;
    return conn && this.#ready && conn.isOpen ? conn : null;
  }

  /** A call on `conn`: TetherError on refusal, ConnectionLost if the socket goes first. */
  async #step<T>(conn: Connection, call: () => Promise<T>): Promise<T> {
    const lost = conn.lost.then((cause) => Promise.reject(new ConnectionLost(cause)));
    lost.catch(() => undefined);
    let timer: ScheduledTask | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = processScheduler().schedule(this.#callTimeoutMs, () => {
        const cause: LossCause = { kind: 'dropped', reason: 'a call timed out' };
        conn.lose(cause);
        reject(new ConnectionLost(cause));
      });
    });
    try {
      return await Promise.race([
        call().catch((raw: unknown) => {
          const error = toTetherError(raw);
          // The socket failed under the call: the connection is over, say so precisely.
          if (isTransportError(error)) {
            conn.lose({ kind: 'dropped', reason: error.message });
            return Promise.reject(
              new ConnectionLost(conn.lostCause ?? { kind: 'dropped', reason: error.message }),
            );
          }
          return Promise.reject(error);
        }),
        lost,
        timeout,
      ]);
    } finally {
      timer?.cancel();
    }
  }

  #publicError(raw: unknown): TetherError {
    if (raw instanceof ConnectionLost) {
      return transportError(
        `The connection was lost (${raw.loss.kind}); not confirmed by the server.`,
      );
    }
    return toTetherError(raw);
  }

  /** capabilityupdate with the current capabilities (+ health when attached and declared). */
  async #declare(
    conn: Connection,
    reason?: string,
    inSequence = false,
  ): Promise<CapabilityUpdateOutput> {
    const credentials = this.#credentials!;
    const declared = Object.keys(this.#declared()).length > 0;
    const withHealth = this.#sessionId !== undefined && this.#attachment !== null && declared;
    const result = await this.#step(conn, () =>
      conn.client.runtimenode.capabilityupdate.mutate({
        nodeId: credentials.nodeId,
        capabilities: this.#declared(),
        ...(withHealth
          ? {
              healthChanges: {
                state: this.#health,
                ...(reason !== undefined ? { reason: reason.slice(0, 512) } : {}),
              },
            }
          : {}),
      }),
    );
    this.#attachmentState = this.#sessionId !== undefined ? result.state : this.#attachmentState;
    // Outside the connect sequence (which settles the state itself), a declaration can move the
    // node between attached and online.
    if (this.#sessionId !== undefined && this.#ready && !inSequence) {
      if (isOnlineAttachment(result.state) && this.#state === 'attached') {
        this.#setState('online');
        this.#emitter.emit('online', {
          at: Date.now(),
          reconnect: this.#connections > 1,
          downtimeMs: null,
        });
      } else if (!isOnlineAttachment(result.state) && this.#state === 'online') {
        this.#setState('attached');
      }
    }
    return result;
  }

  #heartbeatInterval(): number {
    return this.#heartbeatOverride ?? this.#info?.heartbeatIntervalMs ?? 15_000;
  }

  #scheduleBeat(conn: Connection): void {
    const interval = this.#heartbeatInterval();
    // A connection's first beat comes up to half a cadence early (never late): nodes that
    // attached together (a cold start, a reconnect wave) then beat spread over the cadence
    // instead of in lockstep. Later beats: the cadence ± jitter.
    const first = this.#beatConn !== conn;
    this.#beatConn = conn;
    const factor = first
      ? 1 - Math.min(0.5, 5 * this.#heartbeatJitter) * this.#random()
      : 1 + (this.#random() * 2 - 1) * this.#heartbeatJitter;
    const wait = Math.max(1, interval * factor);
    if (this.#beatTimer === null) {
      this.#beatTimer = processScheduler().schedule(wait, () => void this.#beat(this.#beatConn!));
    } else {
      this.#beatTimer.reschedule(wait);
    }
  }

  async #beat(conn: Connection): Promise<void> {
    this.#beatTimer?.cancel();
    if (this.#conn !== conn || !conn.isOpen) return;
    const credentials = this.#credentials!;
    let metrics = this.#pendingMetrics;
    this.#pendingMetrics = undefined;
    if (metrics === undefined && this.#autoMetrics) metrics = this.#metrics().collect();
    const healthState = this.#health;
    try {
      await this.#step(conn, () =>
        conn.client.runtimenode.heartbeat.mutate({
          nodeId: credentials.nodeId,
          healthState,
          ...(metrics !== undefined ? { metrics } : {}),
        }),
      );
      this.#heartbeats++;
      this.#lastHeartbeatAt = Date.now();
      this.#emitter.emit('heartbeat', {
        at: this.#lastHeartbeatAt,
        healthState,
        ...(metrics !== undefined ? { metrics } : {}),
      });
    } catch (raw) {
      if (raw instanceof ConnectionLost) return;
      const error = toTetherError(raw);
      // Unsent metrics wait for the next beat unless newer ones were reported meanwhile.
      this.#pendingMetrics ??= metrics;
      this.#emitter.emit('heartbeat_failed', { at: Date.now(), error });
      if (isTerminal(error)) {
        conn.lose({ kind: 'call_failed', code: error.code, message: error.message });
        return;
      }
      // rate_limited, system.unavailable (draining: the socket goes next), system.internal: beat on.
      this.#log.warn({ nodeId: credentials.nodeId, code: error.code }, 'heartbeat failed');
    }
    if (this.#conn === conn && conn.isOpen) this.#scheduleBeat(conn);
  }

  async #run(): Promise<void> {
    if (!this.#credentials) {
      const enrolled = await this.#enroll();
      if (!enrolled) return;
    }
    while (!this.#wake.signal.aborted && !this.#termination) {
      const terminal = await this.#connectOnce();
      if (terminal) {
        this.#terminate(terminal);
        return;
      }
      if (this.#wake.signal.aborted) return;
      const attempt = this.#backoff.attempt;
      // The server said when to come back (its admission limit): then, plus a little jitter,
      // rather than the exponential window, which keeps its place for failures that say nothing.
      const serverWait = this.#serverWaitMs;
      const wait =
        serverWait !== undefined
          ? serverWait + Math.floor(this.#random() * this.#backoff.baseMs)
          : this.#backoff.next();
      this.#nextAttemptAt = Date.now() + wait;
      this.#setState('reconnecting');
      this.#emitter.emit('reconnect_scheduled', { at: Date.now(), attempt, delayMs: wait });
      this.#log.info({ nodeId: this.nodeId, attempt, delayMs: wait }, 'reconnecting after backoff');
      await processScheduler().delay(wait, this.#wake.signal);
      this.#nextAttemptAt = null;
    }
  }

  async #enroll(): Promise<boolean> {
    this.#setState('enrolling');
    const enrollment = this.#enrollment!;
    for (;;) {
      let credentials: NodeCredentials;
      try {
        credentials = await enrollWithKey({
          ...enrollment,
          url: this.#url,
          nodeVersion: this.#nodeVersion,
          ...(Object.keys(this.#declared()).length > 0 ? { capabilities: this.#declared() } : {}),
          signal: this.#wake.signal,
          retry: { attempts: 1 },
        });
      } catch (raw) {
        if (this.#wake.signal.aborted) return false;
        const error = toTetherError(raw);
        if (!error.retryable) {
          this.#terminate({
            code: error.code,
            message: `enrollment failed: ${error.message}`,
            error,
          });
          return false;
        }
        // rate_limited says how long to wait; jitter on top keeps a crowd from returning at once.
        const wait = (retryAfterMs(error) ?? 0) + this.#backoff.next();
        this.#log.warn({ code: error.code, delayMs: wait }, 'enrollment failed; retrying');
        if (!(await processScheduler().delay(wait, this.#wake.signal))) return false;
        continue;
      }
      this.#credentials = credentials;
      this.#backoff.reset();
      this.#emitter.emit('enrolled', { at: Date.now(), nodeId: credentials.nodeId });
      try {
        await this.#onEnrolled?.(credentials);
      } catch (error) {
        // Never enroll again (that would mint a second identity): stop, and say why.
        this.#terminate({
          code: 'enrollment_not_saved',
          message: `enrolled as ${credentials.nodeId}, but onEnrolled failed: ${error instanceof Error ? error.message : String(error)}`,
        });
        return false;
      }
      return true;
    }
  }

  /** One connection, start to end. Returns a termination reason, or null to reconnect. */
  async #connectOnce(): Promise<TerminationReason | null> {
    const credentials = this.#credentials!;
    const reconnect = this.#connectAttempts > 0;
    const attempt = this.#backoff.attempt;
    this.#connectAttempts++;
    if (!reconnect) this.#setState('connecting');
    const conn = new Connection({
      url: this.#url,
      token: credentials.token,
      handshakeTimeoutMs: this.#connectTimeoutMs,
      keepAliveIntervalMs: this.#keepAliveIntervalMs,
      pongTimeoutMs: this.#pongTimeoutMs,
      resume: this.#resumeClaim(),
    });
    this.#conn = conn;
    this.#ready = false;
    const startedAt = Date.now();
    this.#emitter.emit('connecting', { at: startedAt, attempt, reconnect });

    let failure: TetherError | undefined;
    let cause: LossCause;
    const sequence = this.#sequence(conn, attempt, startedAt);
    this.#connecting = sequence;
    try {
      await sequence;
      this.#connecting = null;
      cause = await conn.lost;
    } catch (raw) {
      this.#connecting = null;
      if (raw instanceof ConnectionLost) {
        cause = conn.lostCause ?? raw.loss;
      } else {
        failure = toTetherError(raw);
        cause = { kind: 'call_failed', code: failure.code, message: failure.message };
        conn.lose(cause);
        cause = conn.lostCause ?? cause;
      }
    }
    this.#beatTimer?.cancel();
    this.#beatConn = null;
    if (this.#commands?.conn === conn) this.#commands = null;
    this.#serverWaitMs = cause.kind === 'open_failed' ? cause.retryAfterMs : undefined;
    const wasReady = this.#ready;
    const wasOnline = this.#state === 'online' || this.#state === 'attached';
    this.#ready = false;
    this.#backoff.disconnected();
    const at = Date.now();
    if (wasReady) {
      this.#lostAt ??= at;
      this.#emitter.emit('disconnected', { at, cause, wasOnline });
    } else if (cause.kind !== 'stopped') {
      this.#emitter.emit('connect_failed', {
        at,
        attempt,
        cause,
        ...(failure !== undefined ? { error: failure } : {}),
      });
    }
    if (cause.kind !== 'stopped') {
      this.#log.warn(
        { nodeId: credentials.nodeId, cause },
        wasReady ? 'connection lost' : 'connection attempt failed',
      );
    }
    // A stop closes the socket properly and waits for it. After the reconnect notification the
    // server is going away: the closing handshake is started but not waited for (a stopping
    // server may no longer read it; the socket is terminated after the grace period), so the
    // next attempt is not delayed by it. A dead or refused socket is simply dropped.
    if (cause.kind === 'reconnect_requested') void conn.dispose(true);
    else await conn.dispose(cause.kind === 'stopped');
    if (this.#conn === conn) this.#conn = null;

    return terminationFor(cause, failure);
  }

  /**
   * What this node was, for the next connection's upgrade request: its active attachment, the
   * session, its version, the digest of its declared capabilities and its health. Null before
   * the first attach (or without a session).
   */
  #resumeClaim(): ResumeClaim | null {
    const attachment = this.#attachment;
    const sessionId = this.#sessionId;
    if (sessionId === undefined || attachment === null) return null;
    if (!['registering', 'online', 'degraded'].includes(this.#attachmentState ?? '')) return null;
    const parsedSession = SessionIdSchema.safeParse(sessionId);
    const version = EventEnvelopeVersion.safeParse(this.#nodeVersion);
    const declared = CapabilitiesSchema.safeParse(this.#declared());
    if (!parsedSession.success || !version.success || !declared.success) return null;
    return {
      attachmentId: attachment.attachmentId,
      sessionId: parsedSession.data,
      nodeVersion: version.data,
      // The digest of what the server stores: the capabilities as its schema parses them.
      capabilitiesDigest: capabilitiesDigest(declared.data),
      healthState: this.#health,
    };
  }

  /**
   * The handshake answer (x-tether-handshake) replaces `system.info`; resumed → online at once;
   * otherwise attach → capabilityupdate (only when needed) → beats. Throws ConnectionLost or
   * TetherError.
   */
  async #sequence(conn: Connection, attempt: number, startedAt: number): Promise<void> {
    const credentials = this.#credentials!;
    await this.#step(conn, () => conn.opened);
    this.#emitter.emit('connected', { at: Date.now(), attempt, connectMs: Date.now() - startedAt });
    const handshake = conn.handshake;
    if (handshake !== null) {
      const { resumed: _r, reason: _why, state: _s, readOnly: _ro, ...info } = handshake;
      this.#info = info;
    } else {
      // A server without the handshake answer: ask.
      this.#info = await this.#step(conn, () => conn.client.system.info.query());
    }
    if (this.#wake.signal.aborted) return;
    this.#connections++;
    const reconnect = this.#connections > 1;
    const downtime = (): number | null =>
      this.#lostAt === null ? null : Date.now() - this.#lostAt;

    const resumed =
      handshake?.resumed === true && conn.claim !== null && this.#attachment !== null
        ? {
            ...this.#attachment,
            state: handshake.state ?? 'registering',
            readOnly: handshake.readOnly,
          }
        : null;
    if (handshake !== null && conn.claim !== null && resumed === null) {
      this.#log.info(
        { nodeId: credentials.nodeId, reason: handshake.reason },
        'not resumed; attaching',
      );
    }
    if (resumed !== null) {
      // Checked and bound by the server in the handshake: same attachment, nothing to send.
      this.#attachment = resumed;
      this.#attachmentState = resumed.state;
      this.#setReadOnly(resumed.readOnly);
      this.#ready = true;
      this.#setState('attached');
      this.#emitter.emit('attached', {
        at: Date.now(),
        attachment: resumed,
        reconnect,
        resumed: true,
        downtimeMs: downtime(),
      });
    }
    const sessionId = this.#sessionId;
    if (resumed !== null) {
      // Resumed: see above.
    } else if (sessionId !== undefined) {
      const attachment = await this.#attach(conn, sessionId);
      this.#attachment = attachment;
      this.#attachmentState = attachment.state;
      this.#setReadOnly(attachment.readOnly);
      this.#ready = true;
      this.#setState('attached');
      this.#emitter.emit('attached', {
        at: Date.now(),
        attachment,
        reconnect,
        resumed: false,
        downtimeMs: downtime(),
      });
      // A re-attach of an attachment that is still online (e.g. after a server restart) keeps
      // its state and already refreshed the capabilities: declaring again would only double
      // the writes of a reconnect wave. Otherwise (registering, or another health) declare.
      const settled = attachment.state === this.#health;
      if (
        !settled &&
        !this.#readOnly &&
        Object.keys(this.#declared()).length > 0 &&
        !this.#wake.signal.aborted
      ) {
        try {
          await this.#declare(conn, undefined, true);
        } catch (raw) {
          if (!(raw instanceof TetherError)) throw raw;
          if (raw.code === 'version.floor_exceeded') {
            // The floor rose between attach and declare: read-only, keep beating.
            this.#setReadOnly(true);
          } else if (raw.code === 'runtimenode.capabilityupdate_conflict') {
            this.#log.warn(
              { nodeId: credentials.nodeId, err: raw.message },
              'capabilities refused',
            );
          } else {
            throw raw;
          }
        }
      }
    } else {
      if (Object.keys(this.#declared()).length > 0) await this.#declare(conn, undefined, true);
      this.#ready = true;
    }
    this.#backoff.connected();
    // Beat once now without a session (presence); with one, attach was the proof of life.
    if (this.#sessionId === undefined) await this.#beat(conn);
    else this.#scheduleBeat(conn);
    const online = this.#sessionId === undefined || isOnlineAttachment(this.#attachmentState);
    if (online) {
      this.#setState('online');
      this.#emitter.emit('online', { at: Date.now(), reconnect, downtimeMs: downtime() });
    } else {
      this.#setState('attached');
    }
    this.#lostAt = null;
    this.#syncCommands(conn);
  }

  /**
   * `runtimenode.attach`. The server supersedes the node's own stale attachment to another
   * session in the same call; a conflict that says the old attachment is not live (it went
   * stale meanwhile) is retried once at once, a live one surfaces (reconnect backoff).
   */
  async #attach(conn: Connection, sessionId: string): Promise<AttachOutput> {
    const credentials = this.#credentials!;
    const call = (): Promise<AttachOutput> =>
      this.#step(conn, () =>
        conn.client.runtimenode.attach.mutate({
          sessionId,
          participantId: credentials.ownerParticipantId,
          nodeId: credentials.nodeId,
          nodeVersion: this.#nodeVersion,
          capabilities: this.#declared(),
          healthState: this.#health,
        }),
      );
    let attachment: AttachOutput;
    try {
      attachment = await call();
    } catch (raw) {
      if (!(raw instanceof TetherError) || raw.code !== 'runtimenode.attach_conflict') throw raw;
      const details = raw.details ?? {};
      const conflict = {
        attachmentId: typeof details.attachmentId === 'string' ? details.attachmentId : null,
        sessionId: typeof details.sessionId === 'string' ? details.sessionId : null,
        // A server that does not say is treated as live: retrying at once would not help.
        live: details.live !== false,
      };
      this.#emitter.emit('attach_conflict', { at: Date.now(), ...conflict });
      if (conflict.live) {
        this.#log.warn(
          { nodeId: credentials.nodeId, sessionId, conflict },
          'attach refused: another copy of this node is attached to another session; retrying after backoff',
        );
        throw raw;
      }
      attachment = await call();
    }
    if (attachment.superseded) {
      this.#log.info(
        { nodeId: credentials.nodeId, sessionId, superseded: attachment.superseded },
        "attach superseded this node's stale attachment to another session",
      );
      this.#emitter.emit('superseded', { at: Date.now(), ...attachment.superseded });
    }
    return attachment;
  }

  #setReadOnly(readOnly: boolean): void {
    const was = this.#readOnly;
    this.#readOnly = readOnly;
    if (readOnly && !was) {
      this.#log.warn(
        { nodeId: this.nodeId, nodeVersion: this.#nodeVersion },
        "read-only: the session's minimum node version is above this node's; it keeps beating but may not write",
      );
      this.#emitter.emit('read_only', { at: Date.now() });
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

function checkCapabilities(capabilities: Capabilities): Capabilities {
  const parsed = CapabilitiesSchema.safeParse(capabilities);
  if (!parsed.success) {
    throw new TetherError('request.invalid', `Invalid capabilities: ${parsed.error.message}`);
  }
  return parsed.data;
}

/** Creates a node handle; nothing happens on the network until `start()`. */
export function createTetherNode(options: TetherNodeOptions): TetherNode {
  return new TetherNodeImpl(options);
}
