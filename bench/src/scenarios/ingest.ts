/** Heartbeat ingest, open loop, Tether then the baseline (docs/performance.md, "Scenarios"). */
import { failedOf, type Step, type StepResult, type Transport } from '../load.js';
import { LOAD_HEADERS, loadRows, ms, num, pct } from '../report.js';
import { connectNotes, crashNotes, runBoth, type FloorCheck, type Scenario } from '../scenario.js';

type Shape = { nodes: number; steps: Step[] };

const rateOf = (s: Pick<StepResult, 'nodes' | 'cadenceMs'>): number =>
  Math.round((s.nodes * 1000) / s.cadenceMs);

/** The ingest floor: sustained rate (window edges and random phases wobble < 1 %), p99 ≤ 50 ms. */
function ingestFloors(label: string, step: StepResult | undefined, rate: number): FloorCheck[] {
  if (!step) return [];
  const { latency: l, backlog: b } = step;
  return [
    {
      floor: `${label}: ≥ ${num(rate)}/s sustained ${num(step.measureSeconds)} s, all acknowledged`,
      measured: `${num(step.achievedRate)}/s achieved of ${num(step.offeredRate)}/s offered, ${num(failedOf(step))} failed`,
      met: step.achievedRate >= rate * 0.99 && failedOf(step) === 0,
    },
    {
      floor: `${label}: p99 ≤ 50 ms`,
      measured: `p99 ${ms(l.p99Ms)} ms (p50 ${ms(l.p50Ms)}, max ${ms(l.maxMs)})`,
      met: l.p99Ms <= 50,
    },
    {
      floor: `${label}: no backlog growth`,
      measured: `in flight ${num(b.start)} → ${num(b.end)} (max ${num(b.max)})`,
      met: b.end - b.start <= Math.max(10, step.offeredRate * 0.1),
    },
  ];
}

function writeFloors(label: string, step: StepResult | undefined): FloorCheck[] {
  if (!step) return [];
  const w = step.writes;
  return [
    {
      floor: `${label}: ≥ 95 % HOT updates`,
      measured: `${pct(w.hotShare)} % of ${num(w.updates)} updates`,
      met: (w.hotShare ?? 0) >= 0.95,
    },
    {
      floor: `${label}: ≤ 250 B WAL per heartbeat`,
      measured: `${num(w.walBytesPerBeat)} B/beat`,
      met: (w.walBytesPerBeat ?? Infinity) <= 250,
    },
  ];
}

/** Tether's metrics history writes per step (inserts fill a node's ring, updates overwrite it). */
const historyNotes = (steps: StepResult[]): string[] =>
  steps.flatMap((s) => {
    const h = s.writes.history;
    if (!h || h.inserts + h.updates === 0) return [];
    const hot = h.updates > 0 ? ` (${pct(h.hotUpdates / h.updates)} % HOT)` : '';
    return `${num(rateOf(s))}/s: metrics history ${num(h.inserts)} samples inserted, ${num(h.updates)} overwritten${hot}`;
  });

/** An ingest scenario; `quick` is a smoke test whose floors are checked at its own rate. */
function defineIngest(
  name: string,
  title: string,
  transport: Transport,
  shapes: { full: Shape; quick: Shape },
  floors: (steps: StepResult[], quick: boolean) => FloorCheck[],
  /** The --quick mark of the floors: the rate of the only step, and for how long. */
  scaled = (s: StepResult | undefined) =>
    `--quick: ${num(s ? rateOf(s) : 0)}/s for ${num(s?.measureSeconds)} s`,
): Scenario {
  return {
    name,
    title,
    needs: (quick) => ({ nodes: shapes[quick ? 'quick' : 'full'].nodes }),
    async run(ctx) {
      const shape = shapes[ctx.quick ? 'quick' : 'full'];
      const pair = await runBoth(ctx, name, {
        transport,
        nodes: ctx.fleet.nodes.slice(0, shape.nodes),
        steps: shape.steps,
      });
      const rows = pair.tether.steps.flatMap((t, i) =>
        loadRows(`${num(rateOf(t))}/s`, t, pair.baseline.steps[i]!),
      );
      return {
        parameters: { transport, ...shape },
        tables: [{ headers: LOAD_HEADERS, rows }],
        notes: [...crashNotes(pair), ...connectNotes(pair), ...historyNotes(pair.tether.steps)],
        floors: floors(pair.tether.steps, ctx.quick),
        scaled: scaled(pair.tether.steps[0]),
        data: pair,
      };
    },
  };
}

type Payload = Step['payload'];
const plain = (
  cadenceMs: number,
  warmupMs: number,
  measureMs: number,
  payload: Payload = 'plain',
) => ({ cadenceMs, payload, warmupMs, measureMs }) satisfies Step;
const metrics = (cadenceMs: number, warmupMs: number, measureMs: number) =>
  plain(cadenceMs, warmupMs, measureMs, 'metrics');

/** In full mode the step at the floor's rate; in quick mode the only step, at its own rate. */
function floorStep(steps: StepResult[], quick: boolean, fullRate: number) {
  const step = quick ? steps[0] : steps.find((s) => rateOf(s) === fullRate);
  return { step, rate: !quick ? fullRate : step ? rateOf(step) : 0 };
}

export const wsIngest = defineIngest(
  'ws-ingest',
  'Heartbeat ingest over WebSocket, acknowledged after commit',
  'ws',
  {
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
  },
  (steps, quick) => {
    const { step, rate } = floorStep(steps, quick, 5_000);
    // Write amplification has no rate in its floor: if the floor step committed nothing (a
    // collapsed server), it is judged on the fastest slower step that did.
    const committed = (s: StepResult): boolean => s.achievedRate > 0 && s.writes.updates > 0;
    const writeStep =
      step && committed(step)
        ? step
        : [...steps].reverse().find((s) => committed(s) && rateOf(s) < rate);
    const writeRate = num(writeStep ? rateOf(writeStep) : rate);
    const at10k = quick ? undefined : steps.find((s) => rateOf(s) === 10_000);
    return [
      ...ingestFloors(`WS ingest ${num(rate)}/s`, step, rate),
      ...writeFloors(
        `write amplification (WS ingest ${writeRate}/s, plain beats)`,
        writeStep ?? step,
      ),
      ...ingestFloors('WS ingest 10,000/s (aim)', at10k, 10_000),
    ];
  },
);

export const httpIngest = defineIngest(
  'http-ingest',
  'Heartbeat ingest over HTTP (keep-alive), acknowledged after commit',
  'http',
  {
    full: {
      nodes: 1_000,
      steps: [plain(2_000, 5_000, 20_000), plain(1_000, 10_000, 60_000), plain(500, 5_000, 30_000)],
    },
    quick: { nodes: 300, steps: [plain(500, 1_500, 3_000)] },
  },
  (steps, quick) => {
    const { step, rate } = floorStep(steps, quick, 1_000);
    return ingestFloors(`HTTP ingest ${num(rate)}/s`, step, rate);
  },
);

export const writeAmplification = defineIngest(
  'write-amp',
  'Write amplification: WebSocket beats carrying metrics that change every beat',
  'ws',
  {
    full: { nodes: 2_000, steps: [metrics(1_000, 5_000, 30_000)] },
    quick: { nodes: 500, steps: [metrics(500, 1_500, 3_000)] },
  },
  (steps) => writeFloors('write amplification (beats with metrics)', steps[0]),
  (s) => `--quick: ${num(s ? rateOf(s) : 0)}/s`,
);
