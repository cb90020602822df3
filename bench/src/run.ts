/**
 * The orchestrator: PostgreSQL (embedded or DATABASE_URL) → a fresh `tether_bench` database,
 * migrated, with the baseline's table and the run's node identities → Tether and the baseline
 * as separate server processes → each scenario (which forks its own load generators) → the
 * results file (`bench/results/<date>.json` and `.md`) and the summary on stdout. Everything it
 * started is stopped on the way out, also on Ctrl-C.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { BASELINE_SCHEMA, BASELINE_TABLE } from './baseline/schema.js';
import { machineFacts, type MachineFacts } from './environment.js';
import { createFleet } from './identities.js';
import { startBenchPostgres, type BenchPostgres } from './postgres.js';
import { renderMarkdown, renderText } from './report.js';
import { SCENARIOS } from './scenarios/index.js';
import type { BenchContext, FloorCheck, ScenarioResult, Table } from './scenarios/types.js';
import {
  startServer as launchServer,
  TETHER_BENCH_ENV,
  type ServerProcess,
  type StartOptions,
  type Target,
} from './servers.js';
import { createDb, runMigrations, type Db } from './tether-internals.js';

const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
const DATA_DIR = join(BENCH_DIR, '.data');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const DATABASE = 'tether_bench';

export interface RunOptions {
  quick: boolean;
  only: string[] | null;
  generators: number;
}

interface ScenarioFailure {
  name: string;
  error: string;
}

export interface BenchResults {
  mode: 'quick' | 'full';
  startedAt: string;
  finishedAt: string;
  machine: MachineFacts;
  setup: Record<string, unknown>;
  scenarios: ScenarioResult[];
  failures: ScenarioFailure[];
  floors: (FloorCheck & { scenario: string })[];
}

function logger(): (line: string) => void {
  const started = performance.now();
  return (line) => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
    console.log(`[${seconds}s] ${line}`);
  };
}

function floorTable(results: BenchResults): Table {
  return {
    headers: ['scenario', 'floor', 'measured', 'met'],
    rows: results.floors.map((f) => [
      f.scenario,
      f.floor,
      f.measured,
      `${f.met ? 'yes' : 'NO'}${f.scaled ? ` (${f.scaled})` : ''}`,
    ]),
  };
}

function machineLine(m: MachineFacts): string {
  return (
    `${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}; PostgreSQL ${m.postgres} ` +
    `(shared_buffers ${m.postgresSettings.shared_buffers ?? '?'}, synchronous_commit ${m.postgresSettings.synchronous_commit ?? '?'}, ` +
    `fsync ${m.postgresSettings.fsync ?? '?'}); commit ${m.commit ?? 'unknown'}`
  );
}

export function renderReport(results: BenchResults, format: 'text' | 'markdown'): string {
  const md = format === 'markdown';
  const render = md ? renderMarkdown : renderText;
  const heading = (text: string, level: number): string =>
    md ? `${'#'.repeat(level)} ${text}` : level === 1 ? `\n=== ${text} ===` : `\n--- ${text} ---`;
  const parts = [
    heading(`Tether bench (${results.mode}) ${results.startedAt}`, 1),
    '',
    `Machine: ${machineLine(results.machine)}`,
  ];
  for (const s of results.scenarios) {
    parts.push('', heading(`${s.name}: ${s.title}`, 2));
    for (const table of s.tables) parts.push('', render(table));
    if (s.notes.length > 0) parts.push('', ...s.notes.map((n) => `${md ? '- ' : '  * '}${n}`));
  }
  for (const f of results.failures) parts.push('', `FAILED ${f.name}: ${f.error}`);
  parts.push('', heading('Floors', 2), '', render(floorTable(results)));
  return parts.join('\n');
}

async function setUpDatabase(postgres: BenchPostgres): Promise<{ url: string; db: Db }> {
  await postgres.recreate(DATABASE);
  const url = postgres.urlFor(DATABASE);
  await runMigrations(url);
  const db = createDb({ connectionString: url, max: 4, applicationName: 'tether-bench' });
  await db.query(BASELINE_SCHEMA);
  return { url, db };
}

export async function runBench(options: RunOptions): Promise<number> {
  const log = logger();
  const scenarios = SCENARIOS.filter((s) => !options.only || options.only.includes(s.name));
  if (scenarios.length === 0) throw new Error(`no scenario matches ${options.only?.join(', ')}`);
  const startedAt = new Date();
  await mkdir(DATA_DIR, { recursive: true });
  await mkdir(RESULTS_DIR, { recursive: true });

  const cleanups: (() => Promise<void>)[] = [];
  const cleanUp = async (): Promise<void> => {
    while (cleanups.length > 0) {
      const step = cleanups.pop()!;
      await step().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    }
  };
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    log('interrupted: stopping servers and PostgreSQL');
    void cleanUp().finally(() => process.exit(130));
  };
  const onCrash = (error: unknown): void => {
    log(
      `harness error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    if (interrupted) return;
    interrupted = true;
    void cleanUp().finally(() => process.exit(1));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);

  try {
    const postgres = await startBenchPostgres(DATA_DIR, log);
    cleanups.push(() => postgres.stop());
    const { url, db } = await setUpDatabase(postgres);
    cleanups.push(() => db.close());
    const probe = new pg.Client({ connectionString: url, application_name: 'tether-bench-probe' });
    await probe.connect();
    cleanups.push(() => probe.end());

    const fleetSize = Math.max(0, ...scenarios.map((s) => s.nodesNeeded(options.quick)));
    const fleetStarted = performance.now();
    const fleet = await createFleet(db, 'bench', fleetSize);
    await db.query(`VACUUM (ANALYZE) nodes, runtime_node_presence`);
    log(
      `${fleetSize} node identities registered in ${((performance.now() - fleetStarted) / 1000).toFixed(1)} s`,
    );

    // Servers are started per load run (see scenarios/run-both.ts); any still running on the
    // way out (an interrupted run) are stopped here.
    const running = new Set<ServerProcess>();
    cleanups.push(async () => {
      await Promise.all([...running].map((s) => s.stop()));
    });
    const startServer = async (
      target: Target,
      label: string,
      options: StartOptions = {},
    ): Promise<ServerProcess> => {
      const logFile = join(DATA_DIR, `${label}-${target}.log`);
      const server = await launchServer(target, url, logFile, options);
      running.add(server);
      const stop = server.stop.bind(server);
      return {
        ...server,
        stop: () => {
          running.delete(server);
          return stop();
        },
      };
    };

    const machine = await machineFacts(probe);
    const ctx: BenchContext = {
      quick: options.quick,
      generators: Math.max(2, options.generators),
      postgres,
      postmasterPid: await postgres.postmasterPid(),
      db,
      probe,
      startServer,
      presenceTables: { tether: 'runtime_node_presence', baseline: BASELINE_TABLE },
      fleet,
      log,
    };

    const results: BenchResults = {
      mode: options.quick ? 'quick' : 'full',
      startedAt: startedAt.toISOString(),
      finishedAt: '',
      machine,
      setup: {
        generators: ctx.generators,
        tetherEnv: TETHER_BENCH_ENV,
        postgres: postgres.embedded ? 'embedded (defaults)' : 'DATABASE_URL',
        fleetSize,
      },
      scenarios: [],
      failures: [],
      floors: [],
    };
    for (const scenario of scenarios) {
      log(`${scenario.name}: ${scenario.title}`);
      try {
        const result = await scenario.run(ctx);
        results.scenarios.push(result);
        results.floors.push(...result.floors.map((f) => ({ scenario: scenario.name, ...f })));
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        log(`${scenario.name} failed: ${message}`);
        results.failures.push({ name: scenario.name, error: message });
      }
    }
    results.finishedAt = new Date().toISOString();

    const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '-');
    const suffix = `${options.quick ? '-quick' : ''}${options.only ? `-only-${options.only.join('+')}` : ''}`;
    const base = join(RESULTS_DIR, `${stamp}Z${suffix}`);
    await writeFile(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(`${base}.md`, `${renderReport(results, 'markdown')}\n`);
    console.log(renderReport(results, 'text'));
    console.log(`\nresults: ${base}.json (and .md); server logs in ${DATA_DIR}`);
    return results.failures.length > 0 ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    if (!interrupted) await cleanUp();
  }
}
