/**
 * A node host of the `commands` scenario: its slice of the fleet, as the nodes of each server
 * get their work.
 *
 * - Tether: real SDK nodes (`createTetherNode`, attached to the session), each answering `echo`
 *   with `node.onCommand` — commands arrive over the node's WebSocket as they are invoked.
 * - baseline: each node asks the baseline server for its pending commands every second (a
 *   random phase each, so the fleet's polls are spread) and posts each result back — the naive
 *   way to hand work to nodes without a connection to push on.
 */
import { createTetherNode, echoCapability, type TetherNode } from '@tether/node-client';
import type { FromHost, HostSpec, HostStatus, ToHost } from './protocol.js';

const STATUS_EVERY_MS = 250;

function reply(message: FromHost): void {
  process.send?.(message);
}

const status: HostStatus = { started: 0, online: 0, answered: 0, pollErrors: 0 };
let stopFleet: (() => Promise<void>) | null = null;
let statusTimer: NodeJS.Timeout | undefined;

function startSdk(spec: HostSpec): () => Promise<void> {
  const echo = echoCapability();
  const online = new Set<number>();
  const nodes: TetherNode[] = spec.nodes.map((identity, i) => {
    const node = createTetherNode({
      url: spec.baseUrl,
      token: identity.token,
      nodeId: identity.nodeId,
      ownerParticipantId: spec.ownerParticipantId,
      ...(spec.sessionId !== null ? { sessionId: spec.sessionId } : {}),
    });
    node.onCommand(echo.name, echo.handler, { ...echo.options, descriptor: echo.descriptor });
    node.on('online', () => {
      if (!online.has(i)) {
        online.add(i);
        status.online = online.size;
        startNext();
      }
    });
    node.on('command_finished', () => status.answered++);
    return node;
  });
  let next = 0;
  const startNext = (): void => {
    if (next >= nodes.length) return;
    status.started++;
    void nodes[next++]!.start();
  };
  for (let k = 0; k < spec.connectConcurrency; k++) startNext();
  return async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
}

function startPollers(spec: HostSpec): () => Promise<void> {
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
        status.answered++;
      }
    } catch {
      status.pollErrors++;
    }
  };
  spec.nodes.forEach((identity, i) => {
    status.started++;
    status.online++;
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

process.on('message', (message: ToHost) => {
  try {
    if (message.type === 'init') {
      stopFleet =
        message.spec.target === 'tether' ? startSdk(message.spec) : startPollers(message.spec);
      statusTimer = setInterval(
        () => reply({ type: 'status', status: { ...status } }),
        STATUS_EVERY_MS,
      );
    } else if (message.type === 'exit') {
      clearInterval(statusTimer);
      void Promise.race([
        stopFleet?.() ?? Promise.resolve(),
        new Promise((resolve) => setTimeout(resolve, 5_000).unref()),
      ]).finally(() => process.exit(0));
    }
  } catch (error) {
    reply({ type: 'fatal', message: error instanceof Error ? error.message : String(error) });
  }
});

process.on('disconnect', () => process.exit(0));
