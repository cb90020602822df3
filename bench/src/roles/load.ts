/** A load generator (child process). */
import { Histogram, type HistogramData } from '../histogram.js';
import { preciseNow, sleep } from '../ipc.js';
import {
  HEARTBEAT,
  HttpTransport,
  WsTransport,
  type BeatTransport,
  type TransportSpec,
} from '../wire.js';

export type Transport = 'ws' | 'http';

/** `plain`: `{nodeId, healthState}`; `metrics`: plus a metrics object that changes every beat. */
export interface Step {
  cadenceMs: number;
  payload: 'plain' | 'metrics';
  warmupMs: number;
  measureMs: number;
}

/** What a generator counts over one measurement window. */
export interface StepReport {
  /** Beats scheduled inside the measurement window (the offered load). */
  offered: number;
  ok: number;
  errors: Record<string, number>;
  timeouts: number;
  /** Acknowledgements received inside the window, whenever their beat was scheduled. */
  acksInWindow: number;
  /** Beats in flight, sampled once a second. */
  backlog: number[];
  /** Scheduled → acknowledged (includes any delay in the generator: coordinated omission safe). */
  latency: HistogramData;
  /** Scheduled → handed to the socket: how far behind its own schedule the generator ran. */
  sendLag: HistogramData;
}

interface State extends Omit<StepReport, 'latency' | 'sendLag'> {
  step: Step;
  windowStart: number;
  windowEnd: number;
  latency: Histogram;
  sendLag: Histogram;
  /** In-window beats not yet answered. */
  unsettled: number;
}

interface Beat {
  scheduled: number;
  inWindow: boolean;
  settled: boolean;
  state: State;
}

let spec: TransportSpec;
let transport: BeatTransport;
/** Unanswered beats in scheduling order (for timeouts); settled ones are skipped lazily. */
let queue: Beat[] = [];
let head = 0;
let inFlight = 0;
let ticker: NodeJS.Timeout | undefined;
let sampler: NodeJS.Timeout | undefined;
let current: State | null = null;
let uptime = 0;

function fire(state: State, index: number, scheduled: number): void {
  const inWindow = scheduled >= state.windowStart && scheduled < state.windowEnd;
  const beat: Beat = { scheduled, inWindow, settled: false, state };
  if (inWindow) state.offered++;
  const input: Record<string, unknown> = {
    nodeId: spec.nodes[index]!.nodeId,
    healthState: 'online',
  };
  if (state.step.payload === 'metrics') {
    input.metrics = {
      cpuPercent: Math.round(Math.random() * 1000) / 10,
      memoryUsedBytes: 4_000_000_000 + Math.floor(Math.random() * 1_000_000_000),
      memoryTotalBytes: 17_179_869_184,
      uptimeSeconds: ++uptime,
    };
  }
  const sentAt = preciseNow();
  if (!transport.send(index, HEARTBEAT, input, (error) => settle(beat, error))) {
    if (inWindow) state.errors.not_connected = (state.errors.not_connected ?? 0) + 1;
    return;
  }
  inFlight++;
  queue.push(beat);
  if (inWindow) {
    state.unsettled++;
    state.sendLag.recordMs(sentAt - scheduled);
  }
}

function settle(beat: Beat, error: string | null): void {
  const state = beat.state;
  const now = preciseNow();
  // Throughput counts every acknowledgement, also of beats already given up on: the server
  // committed them.
  if (error === null && now >= state.windowStart && now < state.windowEnd) state.acksInWindow++;
  if (beat.settled) return; // already counted as a timeout
  beat.settled = true;
  inFlight--;
  if (!beat.inWindow) return;
  state.unsettled--;
  if (error === null) {
    state.ok++;
    state.latency.recordMs(now - beat.scheduled);
  } else state.errors[error] = (state.errors[error] ?? 0) + 1;
}

function expire(now: number): void {
  const limit = now - spec.requestTimeoutMs;
  for (; head < queue.length; head++) {
    const beat = queue[head]!;
    if (beat.settled) continue;
    if (beat.scheduled > limit) break;
    beat.settled = true;
    inFlight--;
    if (beat.inWindow) {
      beat.state.unsettled--;
      beat.state.timeouts++;
    }
  }
  if (head > 10_000 && head * 2 > queue.length) {
    queue = queue.slice(head);
    head = 0;
  }
}

export const handlers = {
  init(transportSpec: TransportSpec, kind: Transport) {
    spec = transportSpec;
    transport = kind === 'ws' ? new WsTransport(spec) : new HttpTransport(spec);
    return transport.connect();
  },

  /** Beats from `startAt` until `stop`; the window follows the warm-up. */
  start(step: Step, startAt: number) {
    const nodes = spec.nodes;
    const windowStart = startAt + step.warmupMs;
    const state: State = {
      step,
      windowStart,
      windowEnd: windowStart + step.measureMs,
      offered: 0,
      ok: 0,
      errors: {},
      timeouts: 0,
      acksInWindow: 0,
      latency: new Histogram(),
      sendLag: new Histogram(),
      backlog: [],
      unsettled: 0,
    };
    current = state;
    // Random phases, visited in phase order: beat j is node order[j mod n] in round ⌊j / n⌋.
    const phases = nodes.map(() => Math.random() * step.cadenceMs);
    const order = nodes.map((_, i) => i).sort((a, b) => phases[a]! - phases[b]!);
    let j = 0;
    const tick = (): void => {
      const now = preciseNow();
      for (; ; j++) {
        const index = order[j % nodes.length]!;
        const scheduled = startAt + phases[index]! + Math.floor(j / nodes.length) * step.cadenceMs;
        if (scheduled > now) break;
        fire(state, index, scheduled);
      }
      expire(now);
      ticker = setTimeout(tick, 1);
    };
    ticker = setTimeout(tick, Math.max(0, startAt - preciseNow()));
    sampler = setInterval(() => state.backlog.push(inFlight), 1_000);
  },

  /** Stops scheduling, waits (bounded by the request timeout) for in-window answers. */
  async stop(): Promise<StepReport & { socketsOpen: number }> {
    clearTimeout(ticker);
    clearInterval(sampler);
    const state = current;
    if (!state) throw new Error('stop before start');
    while (state.unsettled > 0) {
      await sleep(20);
      expire(preciseNow());
    }
    const { offered, ok, errors, timeouts, acksInWindow, backlog } = state;
    return {
      ...{ offered, ok, errors, timeouts, acksInWindow, backlog },
      latency: state.latency.toData(),
      sendLag: state.sendLag.toData(),
      socketsOpen: transport.socketsOpen(),
    };
  },

  close: () => transport?.close(),
};
