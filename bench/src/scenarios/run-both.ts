/**
 * Runs one load plan against a fresh Tether process, then the same plan against a fresh baseline
 * process: one server at a time, so neither competes with the other's leftovers (a backlog still
 * draining, a grown heap) and RSS is measured from a clean start.
 */
import { runLoad, type LoadPlan, type LoadResult } from '../load.js';
import type { ServerExit, Target } from '../servers.js';
import type { BenchContext } from './types.js';

export type Pair = Record<Target, LoadResult & { serverExit: ServerExit }>;

export async function runBoth(
  ctx: BenchContext,
  label: string,
  plan: Omit<LoadPlan, 'generators'>,
): Promise<Pair> {
  const results: Partial<Pair> = {};
  for (const target of ['tether', 'baseline'] as const) {
    const server = await ctx.startServer(target, label);
    ctx.log(` ${target} (pid ${server.pid}):`);
    let result: LoadResult | undefined;
    try {
      result = await runLoad(
        { ...plan, generators: ctx.generators },
        {
          server,
          presenceTable: ctx.presenceTables[target],
          ...(target === 'tether' ? { historyTable: 'runtime_node_metrics' } : {}),
          pg: ctx.probe,
          postmasterPid: ctx.postmasterPid,
          log: ctx.log,
        },
      );
    } finally {
      const exit = await server.stop();
      if (exit.crashed) {
        ctx.log(
          `  ${target} server CRASHED (code ${exit.code}, signal ${exit.signal}); see ${server.logFile}`,
        );
      }
      if (result) results[target] = { ...result, serverExit: exit };
    }
  }
  return results as Pair;
}

/** Lines for the report about servers that died under the load. */
export function crashNotes(pair: Pair): string[] {
  return (['tether', 'baseline'] as const)
    .filter((t) => pair[t].serverExit.crashed)
    .map((t) => {
      const e = pair[t].serverExit;
      const reason = /heap out of memory/.test(e.logTail ?? '')
        ? ' — JavaScript heap out of memory'
        : '';
      return `${t} server crashed during the run (exit code ${e.code}, signal ${e.signal})${reason}`;
    });
}

/** Lines for the report about sockets the server closed while the fleet was connecting. */
export function connectNotes(pair: Pair): string[] {
  return (['tether', 'baseline'] as const)
    .filter((t) => pair[t].connect.retried > 0 || pair[t].connect.failed > 0)
    .map((t) => {
      const c = pair[t].connect;
      return (
        `${t}: ${c.retried} socket(s) closed by the server while connecting were retried, ` +
        `${c.failed} never connected; e.g. ${c.failures.slice(0, 2).join('; ')}`
      );
    });
}
