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
 * session is given: capabilities, client version, health) → `runtimenode.capabilityupdate` with
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
  CONTRACT_VERSION,
  EventEnvelopeVersion,
  SessionId as SessionIdSchema,
  TetherError,
  type AttachOutput,
  type Capabilities,
  type CapabilityUpdateOutput,
  type HeartbeatMetrics,
  type NodeState,
  type ResumeClaim,
  type RuntimeNodeHealthState,
  type SystemInfoOutput,
} from '@tether/contracts';
import { capabilitiesDigest } from '@tether/contracts/node';
import { Backoff } from './backoff.js';
import { ConnectionLost, callOn, publicError } from './call.js';
import type { CommandHandler } from './commands.js';
import type { NodeCredentials } from './credentials.js';
import { enrollWithKey } from './enroll.js';
import { isTransportError, retryAfterMs, toTetherError } from './errors.js';
import { Heartbeats } from './heartbeat.js';
import { NodeCommands } from './node-commands.js';
import type {
  EnrollmentOptions,
  NodeConnectionState,
  OnCommandOptions,
  TetherNode,
  TetherNodeEvents,
  TetherNodeOptions,
  TetherNodeSnapshot,
} from './node-types.js';
import { FINAL_STATES, stateChanges, waitForState } from './node-wait.js';
import { processScheduler } from './scheduler.js';
import { terminationFor, type TerminationReason } from './termination.js';
import { Connection, type LossCause } from './transport.js';
import { Emitter, delay, normaliseBaseUrl, silentLogger, type TetherLogger } from './util.js';

export type {
  DisconnectCause,
  EnrollmentOptions,
  NodeConnectionState,
  OnCommandOptions,
  TetherNode,
  TetherNodeEvents,
  TetherNodeOptions,
  TetherNodeSnapshot,
} from './node-types.js';

function isOnlineAttachment(state: NodeState | null): boolean {
  return state === 'online' || state === 'degraded';
}

class TetherNodeImpl implements TetherNode {
  readonly #emitter: Emitter<TetherNodeEvents>;
  readonly #log: TetherLogger;
  readonly #url: string;
  readonly #clientVersion: string;
  readonly #sessionId: string | undefined;
  readonly #enrollment: EnrollmentOptions | undefined;
  readonly #onEnrolled: TetherNodeOptions['onEnrolled'];
  readonly #random: () => number;
  readonly #backoff: Backoff;
  /** How long the server asked the last refused connection attempt to wait, if it did. */
  #serverWaitMs: number | undefined;
  readonly #callTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #keepAliveIntervalMs: number;
  readonly #pongTimeoutMs: number;

  #credentials: NodeCredentials | undefined;
  #state: NodeConnectionState = 'idle';
  #capabilities: Capabilities;
  readonly #commands: NodeCommands;
  readonly #heartbeats: Heartbeats;
  #health: RuntimeNodeHealthState;
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
  #attachmentState: NodeState | null = null;
  #readOnly = false;
  #termination: TerminationReason | null = null;
  #connectAttempts = 0;
  #connections = 0;
  #nextAttemptAt: number | null = null;
  #lostAt: number | null = null;

  constructor(options: TetherNodeOptions) {
    this.#log = options.logger ?? silentLogger;
    this.#emitter = new Emitter((error) =>
      this.#log.error({ err: error }, 'a tether-node event listener threw'),
    );
    if (!options.url) throw new TypeError('createTetherNode: `url` is required');
    this.#url = normaliseBaseUrl(options.url);
    this.#clientVersion = options.clientVersion ?? CONTRACT_VERSION;
    if (!EventEnvelopeVersion.safeParse(this.#clientVersion).success) {
      throw new TypeError(
        `createTetherNode: clientVersion must be MAJOR.MINOR (got ${this.#clientVersion})`,
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
    this.#callTimeoutMs = options.callTimeoutMs ?? 15_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#keepAliveIntervalMs = options.keepAliveIntervalMs ?? 10_000;
    this.#pongTimeoutMs = options.pongTimeoutMs ?? 5_000;
    const host = {
      emitter: this.#emitter,
      log: this.#log,
      isCurrent: (conn: Connection) => this.#conn === conn,
      readyConnection: () => this.#readyConnection(),
      call: <T>(conn: Connection, call: () => Promise<T>) => this.#step(conn, call),
      nodeId: () => this.#credentials!.nodeId,
      health: () => this.#health,
      serverIntervalMs: () => this.#info?.heartbeatIntervalMs,
    };
    this.#commands = new NodeCommands(host, options.commandMemory);
    this.#heartbeats = new Heartbeats(host, {
      intervalMs: options.heartbeatIntervalMs,
      jitter: Math.min(0.5, Math.max(0, options.heartbeatJitter ?? 0.1)),
      random: this.#random,
      autoMetrics: options.autoMetrics ?? false,
    });
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
      heartbeats: this.#heartbeats.count,
      lastHeartbeatAt: this.#heartbeats.lastAt,
      commandCapabilities: this.#commands.dispatcher.capabilities,
      activeCommands: this.#commands.dispatcher.activeCount,
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
    this.#commands.dispatcher.stop();
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
    this.#commands.dispatcher.register(capability, handler, handlerOptions);
    this.#commands.descriptors.set(capability, merged[capability]!);
    this.#handlersChanged();
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.#commands.dispatcher.unregister(capability);
      this.#commands.descriptors.delete(capability);
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
      const error = publicError(raw);
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
      throw publicError(raw);
    } finally {
      // Presence follows beats: report the new health now rather than at the next tick.
      if (conn.isOpen) await this.#heartbeats.beat(conn);
    }
    return result;
  }

  reportMetrics(gauges?: Record<string, number>): HeartbeatMetrics {
    return this.#heartbeats.reportMetrics(gauges);
  }

  waitFor(
    states: NodeConnectionState | readonly NodeConnectionState[],
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<NodeConnectionState> {
    return waitForState(this, states, options);
  }

  states(signal?: AbortSignal): AsyncIterableIterator<NodeConnectionState> {
    return stateChanges(this, signal);
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  /** What the node declares: its capabilities plus those it has handlers for. */
  #declared(): Capabilities {
    const handled = this.#commands.descriptors;
    if (handled.size === 0) return this.#capabilities;
    return { ...Object.fromEntries(handled), ...this.#capabilities };
  }

  /** A handler was added or removed: declare the new set now, and (un)subscribe. */
  #handlersChanged(): void {
    const conn = this.#readyConnection();
    if (!conn) return;
    if (!this.#readOnly) {
      this.#declare(conn).catch((raw: unknown) => {
        if (raw instanceof ConnectionLost) return; // declared at the next connection
        this.#log.warn(
          { nodeId: this.nodeId, code: publicError(raw).code },
          'declaring the command capabilities failed',
        );
      });
    }
    this.#syncCommands(conn);
  }

  /** Subscribes to commands on `conn` when there are handlers (once per connection). */
  #syncCommands(conn: Connection): void {
    this.#commands.sync(conn, this.#credentials!.nodeId);
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
  #step<T>(conn: Connection, call: () => Promise<T>): Promise<T> {
    return callOn(conn, this.#callTimeoutMs, call);
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
          clientVersion: this.#clientVersion,
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
    this.#heartbeats.stop();
    this.#commands.connectionEnded(conn);
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
    const version = EventEnvelopeVersion.safeParse(this.#clientVersion);
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
    if (this.#sessionId === undefined) await this.#heartbeats.beat(conn);
    else this.#heartbeats.schedule(conn);
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
          clientVersion: this.#clientVersion,
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
        { nodeId: this.nodeId, clientVersion: this.#clientVersion },
        "read-only: the session's minimum client version is above this node's; it keeps beating but may not write",
      );
      this.#emitter.emit('read_only', { at: Date.now() });
    }
  }
}

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
