/** A load generator (child process): open-loop beats (docs/performance.md, "Open loop"). */
import { Histogram } from '../histogram.js';
import { count, preciseNow, sleep } from '../ipc.js';
import {
  HEARTBEAT,
  HttpTransport,
  randomMetrics,
  WsTransport,
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

/** What a generator counts over one step's measurement window. */
function newState(step: Step, startAt: number) {
  const windowStart = startAt + step.warmupMs;
  return {
    step,
    windowStart,
    windowEnd: windowStart + step.measureMs,
    /** Beats scheduled inside the window (the offered load). */
    offered: 0,
    ok: 0,
    errors: {} as Record<string, number>,
    timeouts: 0,
    /** Acknowledgements received inside the window, whenever their beat was scheduled. */
    acksInWindow: 0,
    /** Beats in flight, sampled once a second. */
    backlog: [] as number[],
    /** Scheduled → acknowledged (generator delay included: no coordinated omission). */
    latency: new Histogram(),
    /** Scheduled → handed to the socket: how far behind its schedule the generator ran. */
    sendLag: new Histogram(),
    /** In-window beats not yet answered. */
    unsettled: 0,
  };
}

type State = ReturnType<typeof newState>;

interface Beat {
  scheduled: number;
  inWindow: boolean;
  settled: boolean;
  state: State;
}

let spec: TransportSpec;
let transport: WsTransport | HttpTransport;
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
  if (state.step.payload === 'metrics') input.metrics = randomMetrics(++uptime);
  const sentAt = preciseNow();
  if (!transport.send(index, HEARTBEAT, input, (error) => settle(beat, error))) {
    if (inWindow) count(state.errors, 'not_connected');
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
  // Every acknowledgement counts towards throughput, also of beats given up on: they committed.
  if (error === null && now >= state.windowStart && now < state.windowEnd) state.acksInWindow++;
  if (beat.settled) return; // already counted as a timeout
  beat.settled = true;
  inFlight--;
  if (!beat.inWindow) return;
  state.unsettled--;
  if (error === null) {
    state.ok++;
    state.latency.recordMs(now - beat.scheduled);
  } else count(state.errors, error);
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
    const state = (current = newState(step, startAt));
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
  async stop() {
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
    };
  },

  close: () => transport?.close(),
};
