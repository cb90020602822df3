/**
 * A node host (child process) of the `commands` scenario: its slice of the fleet, as the nodes
 * of each server get their work.
 *
 * - Tether: real SDK nodes, `tether-agent simulate`'s simulator (`startSimulation`, attached to
 *   the session), each answering `echo` (and `system.metrics`) — commands arrive over the node's
 *   WebSocket as they are invoked. A cold start at the server's pace: at most
 *   `connectConcurrency` nodes started and not yet online.
 * - baseline: each node asks the baseline server for its pending commands every second (a
 *   random phase each, so the fleet's polls are spread) and posts each result back — the naive
 *   way to hand work to nodes without a connection to push on.
 */
import { startSimulation, type Simulation } from '@tether/node-client';
import type { Target } from '../servers.js';
import type { NodeIdentity } from '../wire.js';

export interface NodesSpec {
  target: Target;
  baseUrl: string;
  ownerParticipantId: string;
  /** The session SDK nodes attach to (Tether). */
  sessionId: string | null;
  nodes: NodeIdentity[];
  /** Nodes started but not yet online, at most (a cold start at the server's pace). */
  connectConcurrency: number;
  /** Baseline nodes ask for work this often. */
  pollIntervalMs: number;
}

function startPollers(spec: NodesSpec): () => Promise<void> {
  let stopped = false;
  const timers: NodeJS.Timeout[] = [];
  const pollOnce = async (nodeId: string): Promise<void> => {
    try {
      const res = await fetch(`${spec.baseUrl}/cmd/poll?node=${encodeURIComponent(nodeId)}`);
      const work = (await res.json()) as { id: string; input: unknown }[];
      for (const item of work) {
        await fetch(`${spec.baseUrl}/cmd/result`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id: item.id, output: item.input }),
        });
      }
    } catch {
      // a failed poll: the next one asks again
    }
  };
  spec.nodes.forEach((identity, i) => {
    const phase = ((i * 7919) % 1000) / 1000;
    const first = setTimeout(() => {
      const loop = (): void => {
        if (stopped) return;
        void pollOnce(identity.nodeId).finally(() => {
          if (!stopped) timers[i] = setTimeout(loop, spec.pollIntervalMs);
        });
      };
      loop();
    }, phase * spec.pollIntervalMs);
    timers[i] = first;
  });
  return () => {
    stopped = true;
    for (const timer of timers) clearTimeout(timer);
    return Promise.resolve();
  };
}

let simulation: Simulation | null = null;
let stopPollers: (() => Promise<void>) | null = null;
let pollers = 0;

export const handlers = {
  async init(spec: NodesSpec): Promise<void> {
    if (spec.target === 'baseline') {
      stopPollers = startPollers(spec);
      pollers = spec.nodes.length;
      return;
    }
    simulation = await startSimulation({
      url: spec.baseUrl,
      sessionId: spec.sessionId!,
      count: spec.nodes.length,
      identities: spec.nodes.map((n) => ({
        ...n,
        url: spec.baseUrl,
        ownerParticipantId: spec.ownerParticipantId,
      })),
      startConcurrency: spec.connectConcurrency,
    });
  },
  /** Nodes online now (baseline pollers are always "online"). */
  online: (): number => simulation?.status().online ?? pollers,
  close: () => (simulation ? simulation.stop() : stopPollers?.()),
};
