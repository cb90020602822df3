/** Concurrent WebSocket nodes beating at the production cadence (docs/performance.md, "Scenarios"). */
import { failedOf, type LoadResult } from '../load.js';
import {
  compareRows,
  LEAD,
  LOAD_HEADERS,
  loadRows,
  mb,
  metric,
  ms,
  num,
  table,
  type Column,
} from '../report.js';
import { connectNotes, crashNotes, runBoth, type Scenario } from '../scenario.js';

/** Server RSS growth per connection, from before connecting to the end of the steady state. */
function perConnectionKb(result: LoadResult): number | null {
  const before = result.connect.serverRssBeforeBytes;
  const after = result.steps[0]?.server?.rssEndBytes ?? result.connect.serverRssAfterBytes;
  if (before === null || after === null || result.connect.opened === 0) return null;
  return (after - before) / result.connect.opened / 1024;
}

type Connected = LoadResult['connect'] & { kb: number | null };
const oneDecimal = (v: number | null | undefined): string => num(v, 1);

const CONNECT: Column<Connected>[] = [
  { header: 'connected', cell: (c) => `${num(c.opened)}/${num(c.opened + c.failed)}` },
  metric('connect s', oneDecimal, (c) => c.durationMs / 1000),
  metric('open→1st ack p50 ms', ms, (c) => c.latency.p50Ms),
  metric('p99 ms', ms, (c) => c.latency.p99Ms),
  metric('RSS before MB', mb, (c) => c.serverRssBeforeBytes, false),
  metric('RSS connected MB', mb, (c) => c.serverRssAfterBytes, false),
  metric('RSS/conn KB', oneDecimal, (c) => c.kb),
];

export const wsConnections: Scenario = {
  name: 'ws-connections',
  title: 'Concurrent WebSocket nodes beating at 15 s',
  needs: (quick) => ({ nodes: quick ? 1_000 : 10_000 }),
  async run(ctx) {
    const nodes = this.needs(ctx.quick).nodes;
    const step = {
      cadenceMs: 15_000,
      payload: 'plain' as const,
      warmupMs: ctx.quick ? 1_500 : 15_000,
      measureMs: ctx.quick ? 3_000 : 45_000,
    };
    const pair = await runBoth(ctx, this.name, {
      transport: 'ws',
      nodes: ctx.fleet.nodes.slice(0, nodes),
      steps: [step],
      connectConcurrency: 100,
    });
    const { tether: t, baseline: b } = pair;
    const kb = { tether: perConnectionKb(t), baseline: perConnectionKb(b) };
    const connected = { ...t.connect, kb: kb.tether };
    const steady = t.steps[0]!;
    const c = t.connect;
    return {
      parameters: { nodes, ...step },
      tables: [
        table(
          ['server'],
          CONNECT,
          compareRows(CONNECT, LEAD, connected, { ...b.connect, kb: kb.baseline }),
        ),
        { headers: LOAD_HEADERS, rows: loadRows(`${num(nodes)} @ 15 s`, steady, b.steps[0]!) },
      ],
      notes: [...crashNotes(pair), ...connectNotes(pair)],
      floors: [
        {
          floor: `${num(nodes)} WebSocket nodes connected and beating at 15 s`,
          measured:
            `${num(c.opened)} connected in ${num(c.durationMs / 1000, 1)} s ` +
            `(${num(c.retried)} retried after a server close, ${num(c.deferred)} upgrades ` +
            `deferred by admission and opened when told); ` +
            `${num(steady.ok)} beats ok, ${num(failedOf(steady))} failed; ${num(kb.tether, 1)} KB RSS/conn; ` +
            `loop p99 ${ms(steady.loopLag?.p99Ms)} ms`,
          met:
            !t.serverExit.crashed &&
            c.failed + c.retried === 0 &&
            failedOf(steady) === 0 &&
            c.opened === nodes,
        },
      ],
      scaled: `--quick: ${num(nodes)} sockets`,
      data: { ...pair, rssPerConnectionKb: kb },
    };
  },
};
