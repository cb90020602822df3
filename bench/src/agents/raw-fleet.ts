/**
 * Agents for the naive baseline, which has no node SDK protocol (no `system.info`, no attach):
 * the bench's raw tRPC wire (as in `worker/transport.ts`) plus the SDK's own reconnection policy,
 * so the comparison with Tether's daemons differs only in what a connection must do.
 *
 * Each agent opens `/trpc?connectionParams=1`, sends `{ token }`, and beats at once: the first
 * acknowledged beat is its "attach" (the baseline writes presence on beats only). Then it beats
 * every cadence ±10 % and answers the server's `PING`. Any loss — refused, closed, the server's
 * reconnect notification, a call unanswered for 15 s — waits `Backoff.next()` from
 * `@tether/node-client` (full jitter, 250 ms … 30 s, reset after 10 s up) and starts over, with
 * the SDK's handshake (10 s) and call (15 s) timeouts.
 */
import { Backoff } from '@tether/node-client';
import { WebSocket } from 'ws';
import type { AgentIdentity, HostSpec } from './protocol.js';
import type { AgentFleet } from './sdk-fleet.js';
import type { FleetTracker } from './tracker.js';

const HANDSHAKE_TIMEOUT_MS = 10_000;
const CALL_TIMEOUT_MS = 15_000;
const BEAT_JITTER = 0.1;

/** The registry code from a tRPC error shape, or the tRPC code. */
function errorCode(error: unknown): string {
  const data = (error as { data?: { code?: unknown; tetherError?: { code?: unknown } } } | null)
    ?.data;
  const code = data?.tetherError?.code ?? data?.code;
  return typeof code === 'string' ? code : 'error';
}

class RawAgent {
  readonly #i: number;
  readonly #agent: AgentIdentity;
  readonly #url: string;
  readonly #cadenceMs: number;
  readonly #tracker: FleetTracker;
  readonly #backoff = new Backoff();
  #socket: WebSocket | null = null;
  #ready = false;
  /** The call awaiting an answer on the current socket, and its deadline. */
  #pendingId = 0;
  #callTimer: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;
  #nextId = 1;
  /**
   * Why this agent ended the connection itself (the first beat refused, a call timed out, the
   * server asked to reconnect), so the attempt or the loss is reported with it.
   */
  #failure: string | null = null;
  #stopped = false;

  constructor(i: number, agent: AgentIdentity, spec: HostSpec, tracker: FleetTracker) {
    this.#i = i;
    this.#agent = agent;
    this.#url = `${spec.baseUrl.replace(/^http/, 'ws')}/trpc?connectionParams=1`;
    this.#cadenceMs = spec.heartbeatMs;
    this.#tracker = tracker;
  }

  connect(): void {
    if (this.#stopped) return;
    this.#tracker.connecting(this.#i, Date.now());
    this.#ready = false;
    let transportError: NodeJS.ErrnoException | null = null;
    const socket = new WebSocket(this.#url, {
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    this.#socket = socket;
    socket.on('open', () => {
      socket.send(
        JSON.stringify({ method: 'connectionParams', data: { token: this.#agent.token } }),
      );
      this.#beat();
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary) return; // tRPC's JSON encoding uses text frames only
      const bytes = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data);
      this.#onMessage(socket, bytes.toString('utf8'));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => (transportError ??= error));
    socket.on('close', (code) => {
      const refused = transportError?.code === 'ECONNREFUSED';
      this.#lost(socket, transportError?.message ?? `closed ${code}`, refused);
    });
  }

  #beat(): void {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const id = this.#nextId++;
    this.#pendingId = id;
    const input = { nodeId: this.#agent.nodeId, healthState: 'online' };
    socket.send(
      // `{ json }`: superjson's encoding of a plain-JSON value (the tRPC transformer).
      JSON.stringify({
        id,
        method: 'mutation',
        params: { path: 'runtimenode.heartbeat', input: { json: input } },
      }),
    );
    // As the SDK does: a call that takes too long drops the connection.
    this.#callTimer = setTimeout(() => {
      this.#failure ??= 'call timed out';
      socket.terminate();
    }, CALL_TIMEOUT_MS);
  }

  #onMessage(socket: WebSocket, text: string): void {
    if (text === 'PING') return socket.send('PONG');
    if (text === 'PONG' || text === '') return;
    let message: { id?: unknown; method?: unknown; error?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    if (message.method === 'reconnect') {
      this.#failure ??= 'reconnect_requested';
      return socket.close(1000, 'reconnect requested');
    }
    if (message.id !== this.#pendingId) return;
    clearTimeout(this.#callTimer);
    this.#pendingId = 0;
    if (message.error !== undefined) {
      const code = errorCode(message.error);
      if (this.#ready) {
        this.#tracker.beat(code);
        this.#scheduleBeat();
      } else {
        // The first beat refused: this attempt failed, reported with the server's code.
        this.#failure = code;
        socket.close(1000, 'first beat refused');
      }
      return;
    }
    if (!this.#ready) {
      this.#ready = true;
      this.#backoff.connected();
      this.#tracker.online(this.#i, Date.now());
    } else this.#tracker.beat(null);
    this.#scheduleBeat();
  }

  #scheduleBeat(): void {
    const jitter = 1 + (Math.random() * 2 - 1) * BEAT_JITTER;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#beat(), this.#cadenceMs * jitter);
  }

  #lost(socket: WebSocket, cause: string, refused: boolean): void {
    if (this.#socket !== socket) return;
    this.#socket = null;
    clearTimeout(this.#callTimer);
    clearTimeout(this.#timer);
    this.#pendingId = 0;
    if (this.#stopped) return;
    if (this.#ready) this.#tracker.disconnected(this.#i, Date.now(), this.#failure ?? cause);
    else
      this.#tracker.connectFailed(this.#i, this.#failure ?? cause, refused ? 'refused' : 'failed');
    this.#failure = null;
    this.#ready = false;
    this.#backoff.disconnected();
    this.#timer = setTimeout(() => this.connect(), this.#backoff.next());
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#callTimer);
    this.#socket?.terminate();
  }
}

export function createRawFleet(spec: HostSpec, tracker: FleetTracker): AgentFleet {
  const agents = spec.agents.map((agent, i) => new RawAgent(i, agent, spec, tracker));
  return {
    start(i) {
      tracker.started(i, Date.now());
      agents[i]!.connect();
    },
    stop() {
      for (const agent of agents) agent.stop();
      return Promise.resolve();
    },
  };
}
