/**
 * An agent host (child process) of the `restart` scenario: a slice of the fleet as long-lived
 * agents that reconnect on their own, reporting what each agent saw (agent-tracker.ts).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Backoff, startSimulation, type Simulation } from '@tether/node-client';
import { WebSocket } from 'ws';
import { FleetTracker, type AgentLog, type HostStatus } from '../agent-tracker.js';
import { callFrame, errorCode, frameOf, HEARTBEAT, paramsFrame, wsUrl } from '../wire.js';

/** What an SDK node's credentials need (`NodeCredentials` minus the URL). */
export interface AgentIdentity {
  nodeId: string;
  token: string;
  ownerParticipantId: string;
}

/** `sdk`: `createTetherNode` daemons (Tether); `raw`: tRPC wire + the SDK's backoff (baseline). */
export type AgentKind = 'sdk' | 'raw';

export interface HostSpec {
  kind: AgentKind;
  /** http://host:port of the server; it keeps its port across the restart. */
  baseUrl: string;
  /** The session SDK agents attach to on every (re)connect (null for raw agents). */
  sessionId: string | null;
  agents: AgentIdentity[];
  /** This host's share of the cold start's concurrency: agents started, never online yet. */
  connectConcurrency: number;
  /** Raw agents' beat cadence; SDK agents beat at the cadence the server advertises. */
  heartbeatMs: number;
}

const HANDSHAKE_TIMEOUT_MS = 10_000;
const CALL_TIMEOUT_MS = 15_000;
const BEAT_JITTER = 0.1;
/** A non-empty declaration, so an attachment can go online. */
const CAPABILITIES = { bench: { description: 'bench restart agent' } };

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
    this.#url = wsUrl(spec.baseUrl);
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
      socket.send(paramsFrame(this.#agent.token));
      this.#beat();
    });
    socket.on('message', (data, isBinary) => {
      const message = frameOf(socket, data, isBinary);
      if (message) this.#onMessage(socket, message);
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
    socket.send(callFrame(id, 'mutation', HEARTBEAT, input));
    // As the SDK does: a call that takes too long drops the connection.
    this.#callTimer = setTimeout(() => {
      this.#failure ??= 'call timed out';
      socket.terminate();
    }, CALL_TIMEOUT_MS);
  }

  #onMessage(
    socket: WebSocket,
    message: { id?: unknown; method?: unknown; error?: unknown },
  ): void {
    if (message.method === 'reconnect') {
      this.#failure ??= 'reconnect_requested';
      return socket.close(1000, 'reconnect requested');
    }
    if (message.id !== this.#pendingId) return;
    clearTimeout(this.#callTimer);
    this.#pendingId = 0;
    if (message.error !== undefined) {
      const code = errorCode(message.error, 'error');
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

/** SDK agents: the simulator, its events fed to the tracker. */
async function startSdk(spec: HostSpec, t: FleetTracker): Promise<() => Promise<void>> {
  if (spec.sessionId === null) throw new Error('SDK agents need a session to attach to');
  const simulation: Simulation = await startSimulation({
    url: spec.baseUrl,
    sessionId: spec.sessionId,
    count: spec.agents.length,
    identities: spec.agents.map((a) => ({ ...a, url: spec.baseUrl })),
    capabilities: CAPABILITIES,
    commands: false,
    startConcurrency: spec.connectConcurrency,
    everyEvent: true,
    onEvent: (e) => {
      const i = e.index;
      switch (e.type) {
        case 'started':
          return t.started(i, e.at);
        case 'connecting':
          return t.connecting(i, e.at);
        case 'attached':
          return t.connected(i);
        case 'connect_failed': {
          const open = e.cause?.startsWith('open_failed') ?? false;
          const refused = open && e.cause!.includes('ECONNREFUSED');
          const how = refused
            ? 'refused'
            : open && e.retryAfterMs !== undefined
              ? 'deferred'
              : 'failed';
          return t.connectFailed(i, e.code ?? e.cause ?? 'failed', how);
        }
        case 'online':
          return t.online(i, e.at);
        case 'disconnected':
          return t.disconnected(i, e.at, e.cause ?? 'disconnected');
        case 'terminated':
          return t.terminated(i, (e.cause ?? '').split(':')[0]!);
        case 'heartbeat':
          return t.beat(null);
        case 'heartbeat_failed':
          return t.beat(e.code ?? 'error');
      }
    },
  });
  // Sockets closed without detaching: the server sees daemons going away, not leaving.
  return () => simulation.stop({ detach: false });
}

function startRaw(spec: HostSpec, t: FleetTracker): () => Promise<void> {
  const agents = spec.agents.map((agent, i) => new RawAgent(i, agent, spec, t));
  let next = 0;
  const startNext = (): void => {
    if (next >= agents.length) return;
    t.started(next, Date.now());
    agents[next++]!.connect();
  };
  t.onFirstOnline = startNext;
  for (let k = 0; k < spec.connectConcurrency; k++) startNext();
  return () => {
    for (const agent of agents) agent.stop();
    return Promise.resolve();
  };
}

// This process's own event-loop delay, reset at the mark: thousands of agents reconnecting at
// once keep a host busy, and a late loop delays the agents' timestamps and timers alike.
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();
let tracker: FleetTracker | null = null;
let stopFleet: (() => Promise<void>) | null = null;

export const handlers = {
  /** From `startAt`, starts the agents (closed loop). */
  async init(spec: HostSpec, startAt: number): Promise<void> {
    const t = new FleetTracker(spec.agents.length);
    tracker = t;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));
    stopFleet = spec.kind === 'sdk' ? await startSdk(spec, t) : startRaw(spec, t);
  },
  status: (): HostStatus => tracker!.status(),
  /** The restart phase begins (SIGTERM follows at once). */
  mark(at: number): void {
    tracker?.mark(at);
    loopDelay.reset();
  },
  /** What each agent saw (the orchestrator sets it against the restart's instants). */
  log(): AgentLog {
    if (!tracker) throw new Error('log before init');
    return tracker.log(process.memoryUsage.rss(), {
      p50Ms: loopDelay.percentile(50) / 1e6,
      p99Ms: loopDelay.percentile(99) / 1e6,
      maxMs: loopDelay.max / 1e6,
    });
  },
  close: () => stopFleet?.(),
};
