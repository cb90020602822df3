/**
 * Concurrent WebSocket nodes: N sockets opened (each authenticates and has its first beat
 * acknowledged), then beating at the production cadence (15 s) with the server's keep-alive pings
 * answered.
 */
import { failedOf, type LoadResult } from '../load.js';
import {
  compareRows,
  LOAD_HEADERS,
  loadRows,
  mb,
  metric,
  ms,
  num,
  type Column,
} from '../report.js';
import {
  connectNotes,
  crashNotes,
  runBoth,
  type FloorCheck,
  type Scenario,
  type ScenarioResult,
} from '../scenario.js';

const CADENCE_MS = 15_000;

function perConnectionKb(result: LoadResult): number | null {
  const before = result.connect.serverRssBeforeBytes;
  const after = result.steps[0]?.server?.rssEndBytes ?? result.connect.serverRssAfterBytes;
  if (before === null || after === null || result.connect.opened === 0) return null;
  return (after - before) / result.connect.opened / 1024;
}

type Connected = LoadResult['connect'] & { kb: number | null };

const CONNECT: Column<Connected>[] = [
  { header: 'connected', cell: (c) => `${num(c.opened)}/${num(c.opened + c.failed)}` },
  metric(
    'connect s',
    (v) => num(v, 1),
    (c) => c.durationMs / 1000,
  ),
  metric('open→1st ack p50 ms', ms, (c) => c.latency.p50Ms),
  metric('p99 ms', ms, (c) => c.latency.p99Ms),
  metric('RSS before MB', mb, (c) => c.serverRssBeforeBytes, false),
  metric('RSS connected MB', mb, (c) => c.serverRssAfterBytes, false),
  metric(
    'RSS/conn KB',
    (v) => num(v, 1),
    (c) => c.kb,
  ),
];

export const wsConnections: Scenario = {
  name: 'ws-connections',
  title: 'Concurrent WebSocket nodes beating at 15 s',
  needs: (quick) => ({ nodes: quick ? 1_000 : 10_000 }),
  async run(ctx): Promise<ScenarioResult> {
    const nodes = this.needs(ctx.quick).nodes;
    const step = {
      cadenceMs: CADENCE_MS,
      payload: 'plain' as const,
      warmupMs: ctx.quick ? 1_500 : 15_000,
      measureMs: ctx.quick ? 3_000 : 45_000,
    };
    const pair = await runBoth(ctx, this.name, {
      transport: 'ws',
      nodes: ctx.fleet.nodes.slice(0, nodes),
      steps: [step],
      connectConcurrency: 100,
      requestTimeoutMs: ctx.quick ? 3_000 : 10_000,
    });
    const t = pair.tether;
    const b = pair.baseline;
    const tKb = perConnectionKb(t);
    const bKb = perConnectionKb(b);
    const connectTable = {
      headers: ['server', ...CONNECT.map((c) => c.header)],
      rows: compareRows(
        CONNECT,
        [['tether'], ['baseline'], ['ratio T/B']],
        { ...t.connect, kb: tKb },
        { ...b.connect, kb: bKb },
      ),
    };
    const steady = t.steps[0]!;
    const scaled = ctx.quick ? `--quick: ${num(nodes)} sockets` : undefined;
    const floors: FloorCheck[] = [
      {
        floor: `${num(nodes)} WebSocket nodes connected and beating at 15 s`,
        measured:
          `${num(t.connect.opened)} connected in ${num(t.connect.durationMs / 1000, 1)} s ` +
          `(${num(t.connect.retried)} retried after a server close); ` +
          `${num(steady.ok)} beats ok, ${num(failedOf(steady))} failed; ${num(tKb, 1)} KB RSS/conn; ` +
          `loop p99 ${ms(steady.loopLag?.p99Ms)} ms`,
        met:
          !t.serverExit.crashed &&
          t.connect.failed === 0 &&
          t.connect.retried === 0 &&
          failedOf(steady) === 0 &&
          t.connect.opened === nodes,
        ...(scaled ? { scaled } : {}),
      },
    ];
    return {
      name: this.name,
      title: this.title,
      parameters: { nodes, ...step },
      tables: [
        connectTable,
        { headers: LOAD_HEADERS, rows: loadRows(`${num(nodes)} @ 15 s`, steady, b.steps[0]!) },
      ],
      notes: [...crashNotes(pair), ...connectNotes(pair)],
      floors,
      data: { ...pair, rssPerConnectionKb: { tether: tKb, baseline: bKb } },
    };
  },
};
