/**
 * An agent host (child process) of the `restart` scenario: a slice of the fleet as long-lived
 * agents that reconnect on their own, reporting what each agent saw (agent-tracker.ts). Both
 * kinds are described in docs/performance.md, "Server restart".
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Backoff, startSimulation, type SimEvent, type SimEventType } from '@tether/node-client';
import { WebSocket } from 'ws';
import { fleetTracker, type FleetTracker } from '../agent-tracker.js';
import { sleep } from '../ipc.js';
import * as wire from '../wire.js';

/** What an SDK node's credentials need (`NodeCredentials` minus the URL). */
export type AgentIdentity = wire.NodeIdentity & { ownerParticipantId: string };

/** `sdk`: `createTetherNode` daemons (Tether); `raw`: tRPC wire + the SDK's backoff (baseline). */
export type AgentKind = 'sdk' | 'raw';

export interface HostSpec {
  kind: AgentKind;
  /** The server's URL; it keeps its port across the restart. */
  baseUrl: string;
  /** The session SDK agents attach to (null for raw agents). */
  sessionId: string | null;
  agents: AgentIdentity[];
  /** This host's share of the cold start's agents connecting at once. */
  connectConcurrency: number;
  /** Raw agents' beat cadence (SDK agents beat as the server advertises). */
  heartbeatMs: number;
}

/** The SDK's handshake (10 s) and call (15 s) timeouts, and its beat jitter (± 10 %). */
const SOCKET_OPTIONS = { perMessageDeflate: false, handshakeTimeout: 10_000 };
const CALL_TIMEOUT_MS = 15_000;
const BEAT_JITTER = 0.1;

type Frame = { id?: unknown; method?: unknown; error?: unknown };

/** A baseline agent: the tRPC wire (the first acknowledged beat is its "attach"), the SDK's backoff. */
function rawAgent(i: number, agent: AgentIdentity, spec: HostSpec, t: FleetTracker) {
  const url = wire.wsUrl(spec.baseUrl);
  const beatInput = { nodeId: agent.nodeId, healthState: 'online' };
  const backoff = new Backoff();
  let socket: WebSocket | null = null;
  let ready = false;
  /** The call awaiting an answer on the current socket, and its deadline. */
  let pendingId = 0;
  let callTimer: NodeJS.Timeout | undefined;
  let timer: NodeJS.Timeout | undefined;
  let nextId = 1;
  /** Why this agent ended the connection itself: the attempt or the loss is reported with it. */
  let failure: string | null = null;
  let stopped = false;

  const beat = (): void => {
    const s = socket;
    if (s?.readyState !== WebSocket.OPEN) return;
    pendingId = nextId++;
    s.send(wire.callFrame(pendingId, 'mutation', wire.HEARTBEAT, beatInput));
    // As the SDK does: a call that takes too long drops the connection.
    callTimer = setTimeout(() => {
      failure ??= 'call timed out';
      s.terminate();
    }, CALL_TIMEOUT_MS);
  };

  const onMessage = (s: WebSocket, message: Frame) => {
    if (message.method === 'reconnect') {
      failure ??= 'reconnect_requested';
      return s.close(1000, 'reconnect requested');
    }
    if (message.id !== pendingId) return;
    clearTimeout(callTimer);
    pendingId = 0;
    const code = message.error === undefined ? null : wire.errorCode(message.error, 'error');
    if (ready) t.beat(code);
    else if (code !== null) {
      // The first beat refused: this attempt failed, reported with the server's code.
      failure = code;
      return s.close(1000, 'first beat refused');
    } else {
      ready = true;
      backoff.connected();
      t.online(i, Date.now());
    }
    clearTimeout(timer);
    timer = setTimeout(beat, spec.heartbeatMs * (1 + (Math.random() * 2 - 1) * BEAT_JITTER));
  };

  const lost = (s: WebSocket, cause: string, refused: boolean): void => {
    if (socket !== s) return;
    socket = null;
    clearTimeout(callTimer);
    clearTimeout(timer);
    pendingId = 0;
    if (stopped) return;
    if (ready) t.disconnected(i, Date.now(), failure ?? cause);
    else t.connectFailed(i, failure ?? cause, refused ? 'refused' : 'failed');
    failure = null;
    ready = false;
    backoff.disconnected();
    timer = setTimeout(connect, backoff.next());
  };

  const connect = (): void => {
    if (stopped) return;
    t.connecting(i, Date.now());
    ready = false;
    let transportError: NodeJS.ErrnoException | null = null;
    const s = new WebSocket(url, SOCKET_OPTIONS);
    socket = s;
    s.on('open', () => {
      s.send(wire.paramsFrame(agent.token));
      beat();
    });
    s.on('message', (data, isBinary) => {
      const message = wire.frameOf(s, data, isBinary);
      if (message) onMessage(s, message);
    });
    s.on('error', (error: NodeJS.ErrnoException) => (transportError ??= error));
    s.on('close', (code) => {
      const refused = transportError?.code === 'ECONNREFUSED';
      lost(s, transportError?.message ?? `closed ${code}`, refused);
    });
  };

  const stop = (): void => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(callTimer);
    socket?.terminate();
  };
  return { connect, stop };
}

/** SDK agents: the simulator, its events fed to the tracker. */
async function startSdk(spec: HostSpec, t: FleetTracker): Promise<() => Promise<void>> {
  if (spec.sessionId === null) throw new Error('SDK agents need a session to attach to');
  const on: Partial<Record<SimEventType, (e: SimEvent) => void>> = {
    started: (e) => t.started(e.index, e.at),
    connecting: (e) => t.connecting(e.index, e.at),
    attached: (e) => t.connected(e.index),
    connect_failed: (e) => {
      const open = e.cause?.startsWith('open_failed') ?? false;
      const refused = open && e.cause!.includes('ECONNREFUSED');
      const how = refused
        ? 'refused'
        : open && e.retryAfterMs !== undefined
          ? 'deferred'
          : 'failed';
      t.connectFailed(e.index, e.code ?? e.cause ?? 'failed', how);
    },
    online: (e) => t.online(e.index, e.at),
    disconnected: (e) => t.disconnected(e.index, e.at, e.cause ?? 'disconnected'),
    terminated: (e) => t.terminated(e.index, (e.cause ?? '').split(':')[0]!),
    heartbeat: () => t.beat(null),
    heartbeat_failed: (e) => t.beat(e.code ?? 'error'),
  };
  const simulation = await startSimulation({
    url: spec.baseUrl,
    sessionId: spec.sessionId,
    count: spec.agents.length,
    identities: spec.agents.map((a) => ({ ...a, url: spec.baseUrl })),
    // A non-empty declaration, so an attachment can go online.
    capabilities: { bench: { description: 'bench restart agent' } },
    commands: false,
    startConcurrency: spec.connectConcurrency,
    everyEvent: true,
    onEvent: (e) => on[e.type]?.(e),
  });
  // Sockets closed without detaching: the server sees daemons going away, not leaving.
  return () => simulation.stop({ detach: false });
}

function startRaw(spec: HostSpec, t: FleetTracker): () => Promise<void> {
  const agents = spec.agents.map((agent, i) => rawAgent(i, agent, spec, t));
  let next = 0;
  const startNext = (): void => {
    if (next >= agents.length) return;
    t.started(next, Date.now());
    agents[next++]!.connect();
  };
  t.onFirstOnline = startNext;
  for (let k = 0; k < spec.connectConcurrency; k++) startNext();
  return () => Promise.resolve(agents.forEach((agent) => agent.stop()));
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
    const t = fleetTracker(spec.agents.length);
    tracker = t;
    await sleep(startAt - Date.now());
    stopFleet = spec.kind === 'sdk' ? await startSdk(spec, t) : startRaw(spec, t);
  },
  status: () => tracker!.status(),
  /** The restart phase begins (SIGTERM follows at once). */
  mark(at: number): void {
    tracker?.mark(at);
    loopDelay.reset();
  },
  /** What each agent saw (the orchestrator sets it against the restart's instants). */
  log() {
    if (!tracker) throw new Error('log before init');
    return tracker.log(process.memoryUsage.rss(), {
      p50Ms: loopDelay.percentile(50) / 1e6,
      p99Ms: loopDelay.percentile(99) / 1e6,
      maxMs: loopDelay.max / 1e6,
    });
  },
  close: () => stopFleet?.(),
};
