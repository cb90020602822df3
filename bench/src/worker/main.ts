/**
 * A load-generator child process. It owns a slice of the simulated nodes and beats for them
 * **open-loop**: every node has a random phase in [0, cadence) and beats at phase + k·cadence
 * whether or not its previous beat was answered, so a slow server faces a growing backlog
 * instead of a politely slowed client. Latency is measured from the *scheduled* time, so the
 * generator's own delays count against the result rather than hiding it (no coordinated omission).
 */
import { cpuUsage } from 'node:process';
import { Histogram } from '../histogram.js';
import {
  preciseNow,
  type FromWorker,
  type StepCounts,
  type Step,
  type StepReport,
  type ToWorker,
  type WorkerSpec,
} from '../protocol.js';
import { HttpTransport, WsTransport, type BeatTransport } from './transport.js';

const HEARTBEAT = 'runtimenode.heartbeat';
const TICK_MS = 1;

function reply(message: FromWorker): void {
  process.send?.(message);
}

interface StepState extends StepCounts {
  step: Step;
  windowStart: number;
  windowEnd: number;
  latency: Histogram;
  sendLag: Histogram;
  /** In-window beats not yet answered. */
  unsettledInWindow: number;
  cpuAtStart: NodeJS.CpuUsage | null;
}

interface Beat {
  scheduled: number;
  inWindow: boolean;
  settled: boolean;
  state: StepState;
}

class Generator {
  readonly #spec: WorkerSpec;
  readonly #transport: BeatTransport;
  /** Unanswered beats in scheduling order (for timeouts); settled ones are skipped lazily. */
  #queue: Beat[] = [];
  #queueHead = 0;
  #inFlight = 0;
  #ticker: NodeJS.Timeout | null = null;
  #sampler: NodeJS.Timeout | null = null;
  #current: StepState | null = null;
  #uptime = 0;

  constructor(spec: WorkerSpec) {
    this.#spec = spec;
    this.#transport = spec.transport === 'ws' ? new WsTransport(spec) : new HttpTransport(spec);
  }

  connect(): Promise<FromWorker> {
    return this.#transport.connect().then((report) => ({ type: 'ready', report }));
  }

  start(step: Step, startAt: number): void {
    const nodes = this.#spec.nodes;
    const windowStart = startAt + step.warmupMs;
    const state: StepState = {
      step,
      windowStart,
      windowEnd: windowStart + step.measureMs,
      offered: 0,
      sent: 0,
      ok: 0,
      errors: {},
      timeouts: 0,
      acksInWindow: 0,
      latency: new Histogram(),
      sendLag: new Histogram(),
      backlog: [],
      unsettledInWindow: 0,
      cpuAtStart: null,
      cpuMs: 0,
    };
    this.#current = state;
    // Random phases, visited in phase order: beat j is node order[j mod n] in round ⌊j / n⌋.
    const phases = nodes.map(() => Math.random() * step.cadenceMs);
    const order = nodes.map((_, i) => i).sort((a, b) => phases[a]! - phases[b]!);
    let j = 0;
    const tick = (): void => {
      const now = preciseNow();
      if (state.cpuAtStart === null && now >= state.windowStart) state.cpuAtStart = cpuUsage();
      if (state.cpuAtStart !== null && state.cpuMs === 0 && now >= state.windowEnd) {
        const used = cpuUsage(state.cpuAtStart);
        state.cpuMs = (used.user + used.system) / 1000;
      }
      for (;;) {
        const index = order[j % nodes.length]!;
        const scheduled = startAt + phases[index]! + Math.floor(j / nodes.length) * step.cadenceMs;
        if (scheduled > now) break;
        this.#fire(state, index, scheduled);
        j++;
      }
      this.#expire(now);
      this.#ticker = setTimeout(tick, TICK_MS);
    };
    const delay = Math.max(0, startAt - preciseNow());
    this.#ticker = setTimeout(tick, delay);
    this.#sampler = setInterval(() => {
      state.backlog.push({ at: preciseNow(), inFlight: this.#inFlight });
    }, 1_000);
  }

  #fire(state: StepState, index: number, scheduled: number): void {
    const inWindow = scheduled >= state.windowStart && scheduled < state.windowEnd;
    const beat: Beat = { scheduled, inWindow, settled: false, state };
    if (inWindow) state.offered++;
    const node = this.#spec.nodes[index]!;
    const input =
      state.step.payload === 'metrics'
        ? {
            nodeId: node.nodeId,
            healthState: 'online',
            metrics: {
              cpuPercent: Math.round(Math.random() * 1000) / 10,
              memoryUsedBytes: 4_000_000_000 + Math.floor(Math.random() * 1_000_000_000),
              memoryTotalBytes: 17_179_869_184,
              uptimeSeconds: ++this.#uptime,
            },
          }
        : { nodeId: node.nodeId, healthState: 'online' };
    const sentAt = preciseNow();
    const sent = this.#transport.send(index, HEARTBEAT, input, (error) =>
      this.#settle(beat, error),
    );
    if (!sent) {
      if (inWindow) state.errors.not_connected = (state.errors.not_connected ?? 0) + 1;
      return;
    }
    this.#inFlight++;
    this.#queue.push(beat);
    if (inWindow) {
      state.sent++;
      state.unsettledInWindow++;
      state.sendLag.recordMs(sentAt - scheduled);
    }
  }

  #settle(beat: Beat, error: string | null): void {
    const state = beat.state;
    const now = preciseNow();
    // Throughput counts every acknowledgement, also of beats already given up on: the server
    // committed them.
    if (error === null && now >= state.windowStart && now < state.windowEnd) state.acksInWindow++;
    if (beat.settled) return; // already counted as a timeout
    beat.settled = true;
    this.#inFlight--;
    if (!beat.inWindow) return;
    state.unsettledInWindow--;
    if (error === null) {
      state.ok++;
      state.latency.recordMs(now - beat.scheduled);
    } else {
      state.errors[error] = (state.errors[error] ?? 0) + 1;
    }
  }

  #expire(now: number): void {
    const limit = now - this.#spec.requestTimeoutMs;
    while (this.#queueHead < this.#queue.length) {
      const beat = this.#queue[this.#queueHead]!;
      if (!beat.settled) {
        if (beat.scheduled > limit) break;
        beat.settled = true;
        this.#inFlight--;
        if (beat.inWindow) {
          beat.state.unsettledInWindow--;
          beat.state.timeouts++;
        }
      }
      this.#queueHead++;
    }
    if (this.#queueHead > 10_000 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  /** Stops scheduling, waits (bounded by the request timeout) for in-window answers. */
  async stop(): Promise<FromWorker> {
    if (this.#ticker) clearTimeout(this.#ticker);
    if (this.#sampler) clearInterval(this.#sampler);
    const state = this.#current;
    if (!state) throw new Error('stop before start');
    while (state.unsettledInWindow > 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      this.#expire(preciseNow());
    }
    if (state.cpuMs === 0 && state.cpuAtStart !== null) {
      const used = cpuUsage(state.cpuAtStart);
      state.cpuMs = (used.user + used.system) / 1000;
    }
    const { offered, sent, ok, errors, timeouts, acksInWindow, backlog, cpuMs } = state;
    const report: StepReport = {
      offered,
      sent,
      ok,
      errors,
      timeouts,
      acksInWindow,
      backlog,
      cpuMs,
      latency: state.latency.toData(),
      sendLag: state.sendLag.toData(),
      socketsOpen: this.#transport.socketsOpen(),
    };
    return { type: 'result', report };
  }

  close(): Promise<void> {
    return this.#transport.close();
  }
}

let generator: Generator | null = null;

process.on('message', (raw: ToWorker) => {
  const fail = (error: unknown): void =>
    reply({ type: 'fatal', message: error instanceof Error ? error.message : String(error) });
  switch (raw.type) {
    case 'init':
      generator = new Generator(raw.spec);
      generator.connect().then(reply, fail);
      break;
    case 'start':
      generator?.start(raw.step, raw.startAt);
      break;
    case 'stop':
      generator?.stop().then(reply, fail);
      break;
    case 'exit':
      void (generator?.close() ?? Promise.resolve()).finally(() => process.exit(0));
      break;
  }
});

// The orchestrator going away must not leave generators behind.
process.on('disconnect', () => process.exit(0));
