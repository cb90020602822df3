/**
 * An agent host (child process) of the `restart` scenario: a slice of the fleet as SDK daemons
 * (`startSimulation`, `tether-agent simulate`'s engine) that reconnect on their own, reporting
 * what each agent saw (agent-tracker.ts). Against Tether they attach to a session; against the
 * baseline, which has no sessions, they only beat (docs/performance.md, "Server restart").
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startSimulation, type SimEvent, type SimEventType } from '@tether/node-client';
import { fleetTracker, type FleetTracker } from '../agent-tracker.js';
import { sleep } from '../ipc.js';
import type { NodeIdentity } from '../wire.js';

/** What an SDK node's credentials need (`NodeCredentials` minus the URL). */
export type AgentIdentity = NodeIdentity & { ownerParticipantId: string };

export interface HostSpec {
  /** The server's URL; it keeps its port across the restart. */
  baseUrl: string;
  /** The session the agents attach to (Tether); null: they only beat (the baseline). */
  sessionId: string | null;
  agents: AgentIdentity[];
  /** This host's share of the cold start's agents connecting at once. */
  connectConcurrency: number;
}

/** The simulator, its events fed to the tracker. */
async function startAgents(spec: HostSpec, t: FleetTracker): Promise<() => Promise<void>> {
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
  const { sessionId } = spec;
  const attach = sessionId !== null;
  const simulation = await startSimulation({
    url: spec.baseUrl,
    ...(attach ? { sessionId } : {}),
    count: spec.agents.length,
    identities: spec.agents.map((a) => ({ ...a, url: spec.baseUrl })),
    // Attached: a non-empty declaration, so an attachment can go online. Beating only: none
    // (the baseline has nothing to declare them to).
    capabilities: attach ? { bench: { description: 'bench restart agent' } } : {},
    commands: false,
    startConcurrency: spec.connectConcurrency,
    everyEvent: true,
    onEvent: (e) => on[e.type]?.(e),
  });
  // Sockets closed without detaching: the server sees daemons going away, not leaving.
  return () => simulation.stop({ detach: false });
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
    stopFleet = await startAgents(spec, t);
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
