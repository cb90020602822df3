/**
 * Real daemons: one `createTetherNode` per agent, exactly as an embedding daemon uses the SDK —
 * its own WebSocket, `system.info` → `runtimenode.attach` (capabilities) → beats at the cadence
 * the server advertises, and on any loss its own full-jitter backoff, re-attach and re-declare.
 * Nothing is tuned for the bench: default backoff (250 ms … 30 s), timeouts and jitter.
 *
 * Kept lean for thousands per process, the way `tether-agent simulate` does it: the SDK's
 * silent logger (no per-agent logger), no metrics collection, and only the events the tracker
 * needs, each a few array writes.
 */
import { createTetherNode, describeCause, type TetherNode } from '@tether/node-client';
import type { Capabilities } from '@tether/contracts';
import type { HostSpec } from './protocol.js';
import type { FleetTracker } from './tracker.js';

/** A non-empty declaration, so an attachment can go online (an attachment goes online only with declared capabilities). */
const CAPABILITIES: Capabilities = { bench: { description: 'bench restart agent' } };

export interface AgentFleet {
  /** Starts agent `i` (it connects, and from then on reconnects on its own). */
  start(i: number): void;
  /** Stops every agent without detaching (the host is about to exit). */
  stop(): Promise<void>;
}

export function createSdkFleet(spec: HostSpec, tracker: FleetTracker): AgentFleet {
  if (spec.sessionId === null) throw new Error('SDK agents need a session to attach to');
  const sessionId = spec.sessionId;
  const nodes: TetherNode[] = spec.agents.map((agent, i) => {
    const node = createTetherNode({
      url: spec.baseUrl,
      token: agent.token,
      nodeId: agent.nodeId,
      ownerParticipantId: agent.ownerParticipantId,
      sessionId,
      capabilities: CAPABILITIES,
    });
    node.on('connecting', (e) => tracker.connecting(i, e.at));
    node.on('attached', () => tracker.connected(i));
    node.on('connect_failed', (e) => {
      const how =
        e.cause.kind !== 'open_failed'
          ? 'failed'
          : e.cause.message.includes('ECONNREFUSED')
            ? 'refused'
            : e.cause.retryAfterMs !== undefined
              ? 'deferred'
              : 'failed';
      tracker.connectFailed(i, e.error?.code ?? describeCause(e.cause), how);
    });
    node.on('online', (e) => tracker.online(i, e.at));
    node.on('disconnected', (e) => tracker.disconnected(i, e.at, describeCause(e.cause)));
    node.on('terminated', (reason) => tracker.terminated(i, reason.code));
    node.on('heartbeat', () => tracker.beat(null));
    node.on('heartbeat_failed', (e) => tracker.beat(e.error.code));
    return node;
  });
  return {
    start(i) {
      tracker.started(i, Date.now());
      void nodes[i]!.start();
    },
    async stop() {
      await Promise.all(nodes.map((node) => node.stop({ detach: false })));
    },
  };
}
