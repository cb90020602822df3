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
 * session is given: capabilities, node version, health, and with capabilities declared the
 * `healthChanges` that take the attachment online in the same call) → `runtimenode.capabilityupdate`
 * with `healthChanges` (only when the attachment is still not at the node's health, capabilities
 * are non-empty and the node is not read-only). Then beats at the advertised cadence ±10% jitter. A
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
 *
 * Here: the handle (`TetherNode`). Its state and the steps it shares with the connection loop are
 * in `node-core.ts`, the loop (enroll, connect, attach or resume, reconnect) in `node-connect.ts`,
 * the public types in `node-types.ts`.
 */
import {
  CapabilityName as CapabilityNameSchema,
  type Capabilities,
  type CapabilityUpdateOutput,
  type HeartbeatMetrics,
  type RuntimeNodeHealthState,
} from '@tether/contracts';
import { publicError } from './call.js';
import type { CommandHandler } from './commands.js';
import { isTransportError } from './errors.js';
import { runNode } from './node-connect.js';
import { NodeCore, checkCapabilities } from './node-core.js';
import type {
  NodeConnectionState,
  OnCommandOptions,
  TetherNode,
  TetherNodeEvents,
  TetherNodeOptions,
  TetherNodeSnapshot,
} from './node-types.js';
import { FINAL_STATES, stateChanges, waitForState } from './node-wait.js';
import type { TerminationReason } from './termination.js';
import { delay } from './util.js';

class TetherNodeImpl implements TetherNode {
  /** Private: it holds the credentials, which must not show in an inspected or logged handle. */
  readonly #core: NodeCore;
  #loop: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;

  constructor(options: TetherNodeOptions) {
    this.#core = new NodeCore(options);
  }

  get state(): NodeConnectionState {
    return this.#core.state;
  }

  get nodeId(): string | null {
    return this.#core.nodeId;
  }

  get termination(): TerminationReason | null {
    return this.#core.termination;
  }

  on<K extends keyof TetherNodeEvents>(event: K, listener: TetherNodeEvents[K]): () => void {
    return this.#core.emitter.on(event, listener);
  }

  once<K extends keyof TetherNodeEvents>(event: K, listener: TetherNodeEvents[K]): () => void {
    return this.#core.emitter.once(event, listener);
  }

  snapshot(): TetherNodeSnapshot {
    const core = this.#core;
    return {
      state: core.state,
      nodeId: this.nodeId,
      sessionId: core.sessionId ?? null,
      health: core.health,
      readOnly: core.readOnly,
      attachment: core.attachment,
      attachmentState: core.attachmentState,
      capabilities: core.declared(),
      serverInfo: core.info,
      connectAttempts: core.connectAttempts,
      reconnects: Math.max(0, core.connections - 1),
      heartbeats: core.heartbeats.count,
      lastHeartbeatAt: core.heartbeats.lastAt,
      commandCapabilities: core.commands.dispatcher.capabilities,
      activeCommands: core.commands.dispatcher.activeCount,
      openSockets: core.conn?.openSockets ?? 0,
      nextAttemptAt: core.nextAttemptAt,
      termination: core.termination,
    };
  }

  start(): Promise<void> {
    if (this.#core.state !== 'idle') return Promise.resolve();
    this.#loop = runNode(this.#core).catch((error: unknown) => {
      // The loop handles its own errors; anything here is a bug. Never leave a node half-alive.
      this.#core.log.error({ err: error }, 'tether-node loop failed');
      void this.#core.conn?.dispose(false);
      this.#core.terminate({
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
    const core = this.#core;
    if (core.state === 'idle') {
      core.setState('stopped');
      return;
    }
    core.wake.abort();
    // Running handlers are told (their signal aborts); what they report still goes out below.
    core.commands.dispatcher.stop();
    const conn = core.conn;
    if (conn && conn.isOpen && options.detach !== false && core.credentials) {
      // Let an attach in flight land first, so the detach is the last word.
      if (core.connecting) {
        // The bounded wait is cancelled once the attach lands: it must not keep the process up.
        const landed = new AbortController();
        await Promise.race([
          core.connecting.catch(() => undefined),
          delay(core.callTimeoutMs, landed.signal),
        ]);
        landed.abort();
      }
      if (conn.isOpen) {
        const nodeId = core.credentials.nodeId;
        await core
          .step(conn, () =>
            conn.client.runtimenode.detach.mutate({
              nodeId: nodeId,
              reason: (options.reason ?? 'node stopped').slice(0, 512),
            }),
          )
          .catch((error: unknown) =>
            core.log.warn(
              { err: error },
              'detach on stop failed; the server will age the node out',
            ),
          );
      }
    }
    conn?.lose({ kind: 'stopped' });
    await this.#loop;
    if (core.state !== 'terminated') core.setState('stopped');
  }

  onCommand<I = unknown>(
    capability: string,
    handler: CommandHandler<I>,
    options: OnCommandOptions<I> = {},
  ): () => void {
    const core = this.#core;
    if (!CapabilityNameSchema.safeParse(capability).success) {
      throw new TypeError(`onCommand: ${JSON.stringify(capability)} is not a capability name`);
    }
    if (FINAL_STATES.includes(core.state)) {
      throw new TypeError(`onCommand: the node is ${core.state}`);
    }
    const { descriptor = {}, ...handlerOptions } = options;
    const merged = checkCapabilities({ ...core.declared(), [capability]: descriptor });
    core.commands.dispatcher.register(capability, handler, handlerOptions);
    core.commands.descriptors.set(capability, merged[capability]!);
    core.handlersChanged();
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      core.commands.dispatcher.unregister(capability);
      core.commands.descriptors.delete(capability);
      core.handlersChanged();
    };
  }

  disconnect(reason = 'disconnect requested'): void {
    this.#core.conn?.lose({ kind: 'dropped', reason });
  }

  async updateCapabilities(capabilities: Capabilities): Promise<CapabilityUpdateOutput | null> {
    const next = checkCapabilities(capabilities);
    const previous = this.#core.capabilities;
    this.#core.capabilities = next;
    const conn = this.#core.readyConnection();
    if (!conn) return null;
    try {
      return await this.#core.declare(conn);
    } catch (raw) {
      const error = publicError(raw);
      // A refusal leaves the server's view unchanged, so ours goes back too (a later re-attach
      // must not declare what the server refused). Unconfirmed (transport) stays: it is
      // declared at the next connection.
      if (!isTransportError(error)) this.#core.capabilities = previous;
      throw error;
    }
  }

  async setHealth(
    health: RuntimeNodeHealthState,
    reason?: string,
  ): Promise<CapabilityUpdateOutput | null> {
    const core = this.#core;
    core.health = health;
    const conn = core.readyConnection();
    if (!conn) return null;
    let result: CapabilityUpdateOutput | null = null;
    try {
      if (core.sessionId && core.attachment && Object.keys(core.declared()).length > 0) {
        result = await core.declare(conn, reason);
      }
    } catch (raw) {
      throw publicError(raw);
    } finally {
      // Presence follows beats: report the new health now rather than at the next tick.
      if (conn.isOpen) await core.heartbeats.beat(conn);
    }
    return result;
  }

  reportMetrics(gauges?: Record<string, number>): HeartbeatMetrics {
    return this.#core.heartbeats.reportMetrics(gauges);
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
}

/** Creates a node handle; nothing happens on the network until `start()`. */
export function createTetherNode(options: TetherNodeOptions): TetherNode {
  return new TetherNodeImpl(options);
}
