/**
 * The node SDK's public types: the node's connection states, `createTetherNode`'s options, the
 * events a node emits, its snapshot and the `TetherNode` handle (the state machine is in
 * `node.ts`).
 */
import type {
  AttachOutput,
  Capabilities,
  CapabilityDescriptor,
  CapabilityUpdateOutput,
  HeartbeatMetrics,
  AttachmentState,
  RuntimeNodeHealthState,
  SystemInfoOutput,
  TetherError,
} from '@tether/contracts';
import type { BackoffOptions } from './backoff.js';
import type { CommandEvents, CommandHandler, CommandHandlerOptions } from './commands.js';
import type { NodeCredentials } from './credentials.js';
import type { EnrollWithKeyOptions } from './enroll.js';
import type { TerminationReason } from './termination.js';
import type { LossCause } from './transport.js';
import type { TetherLogger } from './util.js';

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
