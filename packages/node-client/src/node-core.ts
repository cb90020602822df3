/**
 * One node's state and the steps its handle (`node.ts`) and its connection loop
 * (`node-connect.ts`) share: settings from the options (checked here: a bad option throws from
 * `createTetherNode`), the connection and what the server last said of the attachment, state
 * changes and termination, and `capabilityupdate`. Reachable only through the handle's private
 * field: it holds the credentials.
 */
import {
  Capabilities as CapabilitiesSchema,
  CONTRACT_VERSION,
  EventEnvelopeVersion,
  SessionId as SessionIdSchema,
  TetherError,
  type AttachOutput,
  type Capabilities,
  type CapabilityUpdateOutput,
  type AttachmentState,
  type RuntimeNodeHealthState,
  type SystemInfoOutput,
} from '@tether/contracts';
import { Backoff } from './backoff.js';
import { ConnectionLost, callOn, publicError } from './call.js';
import type { NodeCredentials } from './credentials.js';
import { Heartbeats } from './heartbeat.js';
import { NodeCommands } from './node-commands.js';
import type {
  EnrollmentOptions,
  NodeConnectionState,
  TetherNodeEvents,
  TetherNodeOptions,
} from './node-types.js';
import type { TerminationReason } from './termination.js';
import type { Connection } from './transport.js';
import { Emitter, normaliseBaseUrl, silentLogger, type TetherLogger } from './util.js';

export class NodeCore {
  // Settings, from the options.
  readonly emitter: Emitter<TetherNodeEvents>;
  readonly log: TetherLogger;
  readonly url: string;
  readonly nodeVersion: string;
  readonly sessionId: string | undefined;
  readonly enrollment: EnrollmentOptions | undefined;
  readonly onEnrolled: TetherNodeOptions['onEnrolled'];
  readonly random: () => number;
  readonly backoff: Backoff;
  readonly callTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly keepAliveIntervalMs: number;
  readonly pongTimeoutMs: number;
  readonly commands: NodeCommands;
  readonly heartbeats: Heartbeats;
  /** Aborted by stop() and by termination: ends the loop's waits. */
  readonly wake = new AbortController();

  // State.
  credentials: NodeCredentials | undefined;
  state: NodeConnectionState = 'idle';
  capabilities: Capabilities;
  health: RuntimeNodeHealthState;
  conn: Connection | null = null;
  /** The connection is past its connect sequence (attached or beating). */
  ready = false;
  /** The current connect sequence, so stop() can let it settle before detaching. */
  connecting: Promise<unknown> | null = null;
  info: SystemInfoOutput | null = null;
  attachment: AttachOutput | null = null;
  attachmentState: AttachmentState | null = null;
  readOnly = false;
  termination: TerminationReason | null = null;
  connectAttempts = 0;
  connections = 0;
  nextAttemptAt: number | null = null;
  lostAt: number | null = null;
  /** How long the server asked the last refused connection attempt to wait, if it did. */
  serverWaitMs: number | undefined;

  constructor(options: TetherNodeOptions) {
    this.log = options.logger ?? silentLogger;
    this.emitter = new Emitter((error) =>
      this.log.error({ err: error }, 'a tether-node event listener threw'),
    );
    if (!options.url) throw new TypeError('createTetherNode: `url` is required');
    this.url = normaliseBaseUrl(options.url);
    this.nodeVersion = options.nodeVersion ?? CONTRACT_VERSION;
    if (!EventEnvelopeVersion.safeParse(this.nodeVersion).success) {
      throw new TypeError(
        `createTetherNode: nodeVersion must be MAJOR.MINOR (got ${this.nodeVersion})`,
      );
    }
    if (options.sessionId !== undefined && !SessionIdSchema.safeParse(options.sessionId).success) {
      throw new TypeError(`createTetherNode: sessionId must be a UUID (got ${options.sessionId})`);
    }
    this.sessionId = options.sessionId;
    this.capabilities = checkCapabilities(options.capabilities ?? {});
    this.health = options.health ?? 'online';
    if (options.token !== undefined) {
      if (!options.nodeId || !options.ownerParticipantId) {
        throw new TypeError('createTetherNode: `token` needs `nodeId` and `ownerParticipantId`');
      }
      this.credentials = {
        url: this.url,
        token: options.token,
        nodeId: options.nodeId,
        ownerParticipantId: options.ownerParticipantId,
      };
    } else if (options.enrollment) {
      this.enrollment = options.enrollment;
    } else {
      throw new TypeError(
        'createTetherNode: pass `token` (with nodeId, ownerParticipantId) or `enrollment`',
      );
    }
    this.onEnrolled = options.onEnrolled;
    this.random = options.random ?? Math.random;
    this.backoff = new Backoff({ ...options.backoff, random: this.random });
    this.callTimeoutMs = options.callTimeoutMs ?? 15_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.keepAliveIntervalMs = options.keepAliveIntervalMs ?? 10_000;
    this.pongTimeoutMs = options.pongTimeoutMs ?? 5_000;
    const host = {
      emitter: this.emitter,
      log: this.log,
      isCurrent: (conn: Connection) => this.conn === conn,
      readyConnection: () => this.readyConnection(),
      call: <T>(conn: Connection, call: () => Promise<T>) => this.step(conn, call),
      nodeId: () => this.credentials!.nodeId,
      health: () => this.health,
      serverIntervalMs: () => this.info?.heartbeatIntervalMs,
    };
    this.commands = new NodeCommands(host, options.commandMemory);
    this.heartbeats = new Heartbeats(host, {
      intervalMs: options.heartbeatIntervalMs,
      jitter: Math.min(0.5, Math.max(0, options.heartbeatJitter ?? 0.1)),
      random: this.random,
      autoMetrics: options.autoMetrics ?? false,
    });
  }

  get nodeId(): string | null {
    return this.credentials?.nodeId ?? null;
  }

  /** What the node declares: its capabilities plus those it has handlers for. */
  declared(): Capabilities {
    const handled = this.commands.descriptors;
    if (handled.size === 0) return this.capabilities;
    return { ...Object.fromEntries(handled), ...this.capabilities };
  }

  /** A handler was added or removed: declare the new set now, and (un)subscribe. */
  handlersChanged(): void {
    const conn = this.readyConnection();
    if (!conn) return;
    if (!this.readOnly) {
      this.declare(conn).catch((raw: unknown) => {
        if (raw instanceof ConnectionLost) return; // declared at the next connection
        this.log.warn(
          { nodeId: this.nodeId, code: publicError(raw).code },
          'declaring the command capabilities failed',
        );
      });
    }
    this.syncCommands(conn);
  }

  /** Subscribes to commands on `conn` when there are handlers (once per connection). */
  syncCommands(conn: Connection): void {
    this.commands.sync(conn, this.credentials!.nodeId);
  }

  setState(next: NodeConnectionState): void {
    const previous = this.state;
    if (previous === next) return;
    this.state = next;
    this.log.debug({ nodeId: this.nodeId, from: previous, to: next }, 'tether-node state');
    this.emitter.emit('state', next, previous);
  }

  terminate(reason: TerminationReason): void {
    if (this.termination) return;
    this.termination = reason;
    this.wake.abort();
    this.log.error(
      { nodeId: this.nodeId, code: reason.code, closeCode: reason.closeCode },
      `tether-node terminated: ${reason.message}`,
    );
    this.setState('terminated');
    this.emitter.emit('terminated', reason);
  }

  readyConnection(): Connection | null {
    const conn = this.conn;
    return conn && this.ready && conn.isOpen ? conn : null;
  }

  /** A call on `conn`: TetherError on refusal, ConnectionLost if the socket goes first. */
  step<T>(conn: Connection, call: () => Promise<T>): Promise<T> {
    return callOn(conn, this.callTimeoutMs, call);
  }

  /** capabilityupdate with the current capabilities (+ health when attached and declared). */
  async declare(
    conn: Connection,
    reason?: string,
    inSequence = false,
  ): Promise<CapabilityUpdateOutput> {
    const credentials = this.credentials!;
    const declared = Object.keys(this.declared()).length > 0;
    const withHealth = this.sessionId !== undefined && this.attachment !== null && declared;
    const result = await this.step(conn, () =>
      conn.client.runtimenode.capabilityupdate.mutate({
        nodeId: credentials.nodeId,
        capabilities: this.declared(),
        ...(withHealth
          ? {
              healthChanges: {
                state: this.health,
                ...(reason !== undefined ? { reason: reason.slice(0, 512) } : {}),
              },
            }
          : {}),
      }),
    );
    this.attachmentState = this.sessionId !== undefined ? result.state : this.attachmentState;
    // Outside the connect sequence (which settles the state itself), a declaration can move the
    // node between attached and online.
    if (this.sessionId !== undefined && this.ready && !inSequence) {
      if (isOnlineAttachment(result.state) && this.state === 'attached') {
        this.setState('online');
        this.emitter.emit('online', {
          at: Date.now(),
          reconnect: this.connections > 1,
          downtimeMs: null,
        });
      } else if (!isOnlineAttachment(result.state) && this.state === 'online') {
        this.setState('attached');
      }
    }
    return result;
  }

  setReadOnly(readOnly: boolean): void {
    const was = this.readOnly;
    this.readOnly = readOnly;
    if (readOnly && !was) {
      this.log.warn(
        { nodeId: this.nodeId, nodeVersion: this.nodeVersion },
        "read-only: the session's minimum node version is above this node's; it keeps beating but may not write",
      );
      this.emitter.emit('read_only', { at: Date.now() });
    }
  }
}

export function isOnlineAttachment(state: AttachmentState | null): boolean {
  return state === 'online' || state === 'degraded';
}

export function checkCapabilities(capabilities: Capabilities): Capabilities {
  const parsed = CapabilitiesSchema.safeParse(capabilities);
  if (!parsed.success) {
    throw new TetherError('request.invalid', `Invalid capabilities: ${parsed.error.message}`);
  }
  return parsed.data;
}
