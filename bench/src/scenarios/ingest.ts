/**
 * Heartbeat ingest: N nodes beating open-loop at a compressed cadence (N × 1000 / cadence beats per
 * second), over WebSocket or HTTP, against Tether and then the baseline.
 */
import { failedOf, type Step, type StepResult, type Transport } from '../load.js';
import { LOAD_HEADERS, loadRows, ms, num, pct } from '../report.js';
import {
  connectNotes,
  crashNotes,
  runBoth,
  scaledFloors,
  type FloorCheck,
  type Scenario,
  type ScenarioResult,
} from '../scenario.js';

interface Shape {
  nodes: number;
  steps: Step[];
}

interface IngestDefinition {
  name: string;
  title: string;
  transport: Transport;
  full: Shape;
  /** A smoke test: lower rates and short windows; floors are then checked at its own rate. */
  quick: Shape;
  floors(steps: StepResult[], quick: boolean): FloorCheck[];
}

export function rateOf(step: Pick<StepResult, 'nodes' | 'cadenceMs'>): number {
  return Math.round((step.nodes * 1000) / step.cadenceMs);
}

const RATE_TOLERANCE = 0.99; // window edges and random phases make the count wobble by < 1 %

/** The ingest floor: sustained rate, p99, no errors, no backlog growth. */
export function ingestFloors(
  label: string,
  step: StepResult | undefined,
  floorRate: number,
  p99FloorMs: number,
  scaled: string | undefined,
): FloorCheck[] {
  if (!step) return [];
  const growth = step.backlog.end - step.backlog.start;
  const checks: FloorCheck[] = [
    {
      floor: `${label}: ≥ ${num(floorRate)}/s sustained ${num(step.measureSeconds)} s, all acknowledged`,
      measured: `${num(step.achievedRate)}/s achieved of ${num(step.offeredRate)}/s offered, ${num(failedOf(step))} failed`,
      met: step.achievedRate >= floorRate * RATE_TOLERANCE && failedOf(step) === 0,
    },
    {
      floor: `${label}: p99 ≤ ${p99FloorMs} ms`,
      measured: `p99 ${ms(step.latency.p99Ms)} ms (p50 ${ms(step.latency.p50Ms)}, max ${ms(step.latency.maxMs)})`,
      met: step.latency.p99Ms <= p99FloorMs,
    },
    {
      floor: `${label}: no backlog growth`,
      measured: `in flight ${num(step.backlog.start)} → ${num(step.backlog.end)} (max ${num(step.backlog.max)})`,
      met: growth <= Math.max(10, step.offeredRate * 0.1),
    },
  ];
  return scaledFloors(checks, scaled);
}

export function writeFloors(
  label: string,
  step: StepResult | undefined,
  scaled: string | undefined,
): FloorCheck[] {
  if (!step) return [];
  const checks: FloorCheck[] = [
    {
      floor: `${label}: ≥ 95 % HOT updates`,
      measured: `${pct(step.writes.hotShare)} % of ${num(step.writes.updates)} updates`,
      met: (step.writes.hotShare ?? 0) >= 0.95,
    },
    {
      floor: `${label}: ≤ 250 B WAL per heartbeat`,
      measured: `${num(step.writes.walBytesPerBeat)} B/beat`,
      met: (step.writes.walBytesPerBeat ?? Infinity) <= 250,
    },
  ];
  return scaledFloors(checks, scaled);
}

/** Tether's metrics history writes per step (inserts fill a node's ring, updates overwrite it). */
function historyNotes(steps: StepResult[]): string[] {
  return steps.flatMap((s) => {
    const h = s.writes.history;
    if (!h || h.inserts + h.updates === 0) return [];
    const hot = h.updates > 0 ? ` (${pct(h.hotUpdates / h.updates)} % HOT)` : '';
    return [
      `${num(rateOf(s))}/s: metrics history ${num(h.inserts)} samples inserted, ${num(h.updates)} overwritten${hot}`,
    ];
  });
}

function defineIngest(def: IngestDefinition): Scenario {
  return {
    name: def.name,
    title: def.title,
    needs: (quick) => ({ nodes: (quick ? def.quick : def.full).nodes }),
    async run(ctx): Promise<ScenarioResult> {
      const shape = ctx.quick ? def.quick : def.full;
      const pair = await runBoth(ctx, def.name, {
        transport: def.transport,
        nodes: ctx.fleet.nodes.slice(0, shape.nodes),
        steps: shape.steps,
        requestTimeoutMs: ctx.quick ? 3_000 : 10_000,
      });
      const rows = pair.tether.steps.flatMap((t, i) =>
        loadRows(`${num(rateOf(t))}/s`, t, pair.baseline.steps[i]!),
      );
      return {
        name: def.name,
        title: def.title,
        parameters: { transport: def.transport, ...shape },
        tables: [{ headers: LOAD_HEADERS, rows }],
        notes: [...crashNotes(pair), ...connectNotes(pair), ...historyNotes(pair.tether.steps)],
        floors: def.floors(pair.tether.steps, ctx.quick),
        data: pair,
      };
    },
  };
}

const plain = (cadenceMs: number, warmupMs: number, measureMs: number): Step => ({
  cadenceMs,
  payload: 'plain',
  warmupMs,
  measureMs,
});

/** In full mode the step at the floor's rate; in quick mode the only step, at its own rate. */
function floorStep(
  steps: StepResult[],
  quick: boolean,
  fullRate: number,
): { step: StepResult | undefined; rate: number; scaled: string | undefined } {
  if (!quick)
    return { step: steps.find((s) => rateOf(s) === fullRate), rate: fullRate, scaled: undefined };
  const step = steps[0];
  const rate = step ? rateOf(step) : 0;
  return { step, rate, scaled: `--quick: ${num(rate)}/s for ${num(step?.measureSeconds)} s` };
}

export const wsIngest = defineIngest({
  name: 'ws-ingest',
  title: 'Heartbeat ingest over WebSocket, acknowledged after commit',
  transport: 'ws',
  // A ramp below the floor shows where the server saturates; then the floor; then the aim.
  full: {
    nodes: 5_000,
    steps: [
      plain(5_000, 5_000, 20_000),
      plain(2_000, 5_000, 20_000),
      plain(1_000, 10_000, 60_000),
      plain(500, 5_000, 30_000),
    ],
  },
  quick: { nodes: 1_000, steps: [plain(500, 1_500, 3_000)] },
  floors: (steps, quick) => {
    const { step, rate, scaled } = floorStep(steps, quick, 5_000);
    // Write amplification has no rate in its floor: when the floor step committed nothing (a
    // collapsed server), it is judged on the fastest step that did commit beats.
    const committed = (s: StepResult): boolean => s.achievedRate > 0 && s.writes.updates > 0;
    const writeStep =
      step && committed(step)
        ? step
        : [...steps].reverse().find((s) => committed(s) && rateOf(s) < rate);
    const checks = [
      ...ingestFloors(`WS ingest ${num(rate)}/s`, step, rate, 50, scaled),
      ...writeFloors(
        `write amplification (WS ingest ${num(writeStep ? rateOf(writeStep) : rate)}/s, plain beats)`,
        writeStep ?? step,
        scaled,
      ),
    ];
    const at10k = quick ? undefined : steps.find((s) => rateOf(s) === 10_000);
    if (at10k)
      checks.push(...ingestFloors('WS ingest 10,000/s (aim)', at10k, 10_000, 50, undefined));
    return checks;
  },
});

export const httpIngest = defineIngest({
  name: 'http-ingest',
  title: 'Heartbeat ingest over HTTP (keep-alive), acknowledged after commit',
  transport: 'http',
  full: {
    nodes: 1_000,
    steps: [plain(2_000, 5_000, 20_000), plain(1_000, 10_000, 60_000), plain(500, 5_000, 30_000)],
  },
  quick: { nodes: 300, steps: [plain(500, 1_500, 3_000)] },
  floors: (steps, quick) => {
    const { step, rate, scaled } = floorStep(steps, quick, 1_000);
    return ingestFloors(`HTTP ingest ${num(rate)}/s`, step, rate, 50, scaled);
  },
});

export const writeAmplification = defineIngest({
  name: 'write-amp',
  title: 'Write amplification: WebSocket beats carrying metrics that change every beat',
  transport: 'ws',
  full: {
    nodes: 2_000,
    steps: [{ cadenceMs: 1_000, payload: 'metrics', warmupMs: 5_000, measureMs: 30_000 }],
  },
  quick: {
    nodes: 500,
    steps: [{ cadenceMs: 500, payload: 'metrics', warmupMs: 1_500, measureMs: 3_000 }],
  },
  floors: (steps, quick) =>
    writeFloors(
      'write amplification (beats with metrics)',
      steps[0],
      quick ? `--quick: ${num(steps[0] ? rateOf(steps[0]) : 0)}/s` : undefined,
    ),
});
