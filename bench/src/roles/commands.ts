/**
 * The `commands` scenario's child processes (docs/performance.md, "Commands"): node hosts (`init`,
 * `online`: SDK simulator nodes for Tether, pollers for the baseline) and the invoking driver (`run`).
 */
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
import { count, preciseNow, sleep } from '../ipc.js';
import type { Target } from '../servers.js';
import type { NodeIdentity } from '../wire.js';

/** What a node host runs (Tether: `sessionId` for the SDK nodes to attach to). */
export interface NodesSpec {
  target: Target;
  baseUrl: string;
  ownerParticipantId: string;
  sessionId: string | null;
  nodes: NodeIdentity[];
  /** Nodes started but not yet online, at most (a cold start at the server's pace). */
  connectConcurrency: number;
  pollIntervalMs: number;
}

/** The driver's closed loop: `concurrency` in flight; `callerPollMs`: the baseline's result poll. */
export interface DriverSpec {
  target: Target;
  baseUrl: string;
  /** A participant token of the nodes' owner (Tether). */
  token: string;
  nodeIds: string[];
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  callerPollMs: number;
  /** A command's deadline (Tether `timeoutMs`). */
  timeoutMs: number;
}

const post = (url: string, body: unknown) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

let simulation: Simulation | null = null;
let pollers = 0;
let stopped = false;
const timers: NodeJS.Timeout[] = [];

/** Baseline nodes: each asks for its work every interval (spread over it) and posts the results. */
function startPollers({ baseUrl, nodes, pollIntervalMs }: NodesSpec): void {
  pollers = nodes.length;
  nodes.forEach(({ nodeId }, i) => {
    const loop = async (): Promise<void> => {
      if (stopped) return;
      try {
        const res = await fetch(`${baseUrl}/cmd/poll?node=${encodeURIComponent(nodeId)}`);
        for (const { id, input } of (await res.json()) as { id: string; input: unknown }[]) {
          await post(`${baseUrl}/cmd/result`, { id, output: input });
        }
      } catch {
        // a failed poll: the next one asks again
      }
      if (!stopped) timers[i] = setTimeout(() => void loop(), pollIntervalMs);
    };
    timers[i] = setTimeout(() => void loop(), (((i * 7919) % 1000) / 1000) * pollIntervalMs);
  });
}

/** One invocation, checked to echo its input; `worker` is the caller's index. */
type Call = (nodeId: string, seq: number, worker: number) => Promise<void>;

/** One WebSocket per 16 invocations in flight (docs/performance.md). */
function tetherCaller({ baseUrl: url, token, concurrency, timeoutMs }: DriverSpec) {
  const sockets = Array.from({ length: Math.ceil(concurrency / 16) }, () => {
    const WS = WebSocket as unknown as typeof globalThis.WebSocket;
    const ws = createTetherWSClient({ url, token, WebSocket: WS });
    return { ws, client: createTetherClient({ url, transport: 'ws', wsClient: ws }) };
  });
  const call: Call = async (nodeId, seq, worker) => {
    const { client } = sockets[worker % sockets.length]!;
    const input = { target: { nodeId }, capability: 'echo', input: { seq }, timeoutMs };
    const output = await invoke<{ seq: number }>(client, input);
    if (output.seq !== seq) throw new Error('echo returned another input');
  };
  return { call, close: () => Promise.all(sockets.map((s) => s.ws.close())) };
}

function baselineCaller({ baseUrl, timeoutMs, callerPollMs }: DriverSpec) {
  const call: Call = async (nodeId, seq) => {
    const res = await post(`${baseUrl}/cmd/invoke`, { nodeId, input: { seq } });
    const { id } = (await res.json()) as { id: string };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await sleep(callerPollMs);
      const got = await fetch(`${baseUrl}/cmd/get?id=${id}`);
      const row = (await got.json()) as { state: string; output: { seq: number } | null };
      if (row.state === 'succeeded') {
        if (row.output?.seq !== seq) throw new Error('echo returned another input');
        return;
      }
      if (Date.now() > deadline) throw new Error('expired');
    }
  };
  return { call, close: () => Promise.resolve() };
}

function failureCode(error: unknown): string {
  if (isCommandError(error)) return error.code;
  if (isTetherError(error)) return error.data.tetherError.code;
  return error instanceof Error ? error.message.slice(0, 80) : String(error);
}

/** Closed loop: invocations completed in the measured window (`ok`), their call → result latency. */
async function run(spec: DriverSpec) {
  const caller = spec.target === 'tether' ? tetherCaller(spec) : baselineCaller(spec);
  const latency = new Histogram();
  const failures: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let next = 0;
  const measureFrom = preciseNow() + spec.warmupMs;
  const endAt = measureFrom + spec.durationMs;
  const worker = async (index: number): Promise<void> => {
    while (preciseNow() < endAt) {
      const seq = next++;
      const t0 = preciseNow();
      try {
        await caller.call(spec.nodeIds[seq % spec.nodeIds.length]!, seq, index);
        const t1 = preciseNow();
        if (t0 >= measureFrom && t1 <= endAt) {
          ok++;
          latency.recordMs(t1 - t0);
        }
      } catch (error) {
        if (t0 >= measureFrom) {
          failed++;
          count(failures, failureCode(error));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => worker(i)));
  await caller.close().catch(() => undefined);
  return { ok, failed, failures, latency: latency.toData(), windowMs: spec.durationMs };
}

export const handlers = {
  run,
  async init(spec: NodesSpec): Promise<void> {
    if (spec.target === 'baseline') return startPollers(spec);
    const { baseUrl: url, ownerParticipantId, nodes } = spec;
    simulation = await startSimulation({
      url,
      sessionId: spec.sessionId!,
      count: nodes.length,
      identities: nodes.map((n) => ({ ...n, url, ownerParticipantId })),
      startConcurrency: spec.connectConcurrency,
    });
  },
  /** Nodes online now (baseline pollers are always "online"). */
  online: (): number => simulation?.status().online ?? pollers,
  async close() {
    stopped = true;
    for (const timer of timers) clearTimeout(timer);
    await simulation?.stop();
  },
};
