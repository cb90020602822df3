/**
 * The `commands` scenario's child processes: node hosts (`init`, `online`: SDK simulator nodes for
 * Tether, 1 s pollers for the baseline) and the invoking driver (`run`). See docs/performance.md.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  createTetherClient,
  createTetherWSClient,
  invoke,
  isCommandError,
  isTetherError,
} from '@tether/client';
import { startSimulation, type Simulation } from '@tether/node-client';
import WebSocket from 'ws';
import { Histogram } from '../histogram.js';
import { preciseNow } from '../ipc.js';
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

export interface DriverSpec {
  target: Target;
  baseUrl: string;
  /** A participant token of the nodes' owner (Tether). */
  token: string;
  nodeIds: string[];
  /** Invocations in flight at once (closed loop). */
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** Baseline: the caller polls for the result this often. */
  callerPollMs: number;
  /** A command's deadline (Tether `timeoutMs`). */
  timeoutMs: number;
}

const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();

/** One invocation; `worker` is the caller's index (its WebSocket). */
type Call = (nodeId: string, seq: number, worker: number) => Promise<void>;

const PER_SOCKET = 16;

function tetherCall(spec: DriverSpec): { call: Call; close(): Promise<void> } {
  const sockets = Array.from({ length: Math.ceil(spec.concurrency / PER_SOCKET) }, () => {
    const ws = createTetherWSClient({
      url: spec.baseUrl,
      token: spec.token,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    });
    return { ws, client: createTetherClient({ url: spec.baseUrl, transport: 'ws', wsClient: ws }) };
  });
  return {
    call: async (nodeId, seq, worker) => {
      const { client } = sockets[worker % sockets.length]!;
      const output = await invoke<{ seq: number }>(client, {
        target: { nodeId },
        capability: 'echo',
        input: { seq },
        timeoutMs: spec.timeoutMs,
      });
      if (output.seq !== seq) throw new Error('echo returned another input');
    },
    close: async () => {
      await Promise.all(sockets.map((s) => s.ws.close()));
    },
  };
}

function baselineCall(spec: DriverSpec): { call: Call; close(): Promise<void> } {
  return {
    call: async (nodeId, seq) => {
      const res = await fetch(`${spec.baseUrl}/cmd/invoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ nodeId, input: { seq } }),
      });
      const { id } = (await res.json()) as { id: string };
      const deadline = Date.now() + spec.timeoutMs;
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, spec.callerPollMs));
        const got = await fetch(`${spec.baseUrl}/cmd/get?id=${id}`);
        const row = (await got.json()) as { state: string; output: { seq: number } | null };
        if (row.state === 'succeeded') {
          if (row.output?.seq !== seq) throw new Error('echo returned another input');
          return;
        }
        if (Date.now() > deadline) throw new Error('expired');
      }
    },
    close: () => Promise.resolve(),
  };
}

function failureCode(error: unknown): string {
  if (isCommandError(error)) return error.code;
  if (isTetherError(error)) return error.data.tetherError.code;
  return error instanceof Error ? error.message.slice(0, 80) : String(error);
}

/** Invocations completed in the measured window (`ok`) and their call → result latency. */
async function run(spec: DriverSpec) {
  const caller = spec.target === 'tether' ? tetherCall(spec) : baselineCall(spec);
  const call = caller.call;
  const latency = new Histogram();
  const failures: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let next = 0;
  const started = preciseNow();
  const measureFrom = started + spec.warmupMs;
  const endAt = measureFrom + spec.durationMs;
  const worker = async (index: number): Promise<void> => {
    while (preciseNow() < endAt) {
      const seq = next++;
      const nodeId = spec.nodeIds[seq % spec.nodeIds.length]!;
      const t0 = preciseNow();
      try {
        await call(nodeId, seq, index);
        const t1 = preciseNow();
        if (t0 >= measureFrom && t1 <= endAt) {
          ok++;
          latency.recordMs(t1 - t0);
        }
      } catch (error) {
        if (t0 >= measureFrom) {
          failed++;
          const code = failureCode(error);
          failures[code] = (failures[code] ?? 0) + 1;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => worker(i)));
  const lag = { p99Ms: loopDelay.percentile(99) / 1e6, maxMs: loopDelay.max / 1e6 };
  await caller.close().catch(() => undefined);
  const windowMs = spec.durationMs;
  return { ok, failed, failures, latency: latency.toData(), windowMs, loopDelay: lag };
}

export const handlers = {
  run(spec: DriverSpec) {
    loopDelay.reset();
    return run(spec);
  },
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
