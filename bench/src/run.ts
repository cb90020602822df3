/** `pnpm bench`, the one orchestrator: docs/performance.md, "Running it" and "How the harness works". */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { BASELINE_SCHEMA, BASELINE_TABLE } from './baseline/schema.js';
import { machineFacts } from './environment.js';
import { createFleet } from './identities.js';
import { BENCH_DIR, message } from './ipc.js';
import { startBenchPostgres } from './postgres.js';
import { renderReport, type BenchResults } from './report.js';
import type { BenchContext } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';
import { buildTether, startServer, TETHER_BENCH_ENV, type ServerProcess } from './servers.js';
import { createDb, runMigrations } from './tether-internals.js';

const DATA_DIR = join(BENCH_DIR, '.data');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const DATABASE = 'tether_bench';

const USAGE = `Usage: pnpm bench [options]
  --quick            every scenario scaled down (about a minute): a smoke test, not a measurement
  --only a,b         run only these scenarios (${SCENARIOS.map((s) => s.name).join(', ')})
  --generators N     load-generator processes per load run (default 2, at least 2)
  --list             list the scenarios and exit
PostgreSQL: DATABASE_URL if set (needs CREATE DATABASE), else embedded under bench/.data.`;

type RunOptions = Exclude<ReturnType<typeof parse>, number>;

const stack = (error: unknown): string =>
  error instanceof Error ? (error.stack ?? error.message) : String(error);

async function runBench(options: RunOptions): Promise<number> {
  const started = performance.now();
  const log = (line: string): void => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
    console.log(`[${seconds}s] ${line}`);
  };
  const scenarios = SCENARIOS.filter((s) => !options.only || options.only.includes(s.name));
  const startedAt = new Date();
  await mkdir(DATA_DIR, { recursive: true });
  await mkdir(RESULTS_DIR, { recursive: true });

  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanUp = async (): Promise<void> => {
    for (let step = cleanups.pop(); step; step = cleanups.pop()) {
      await step().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    }
  };
  let interrupted = false;
  const stop = (why: string, code: number): void => {
    if (interrupted) return;
    interrupted = true;
    log(why);
    void cleanUp().finally(() => process.exit(code));
  };
  const onSignal = (): void => stop('interrupted: stopping servers and PostgreSQL', 130);
  const onCrash = (error: unknown): void => stop(`harness error: ${stack(error)}`, 1);
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, onSignal);
  for (const event of ['uncaughtException', 'unhandledRejection']) process.on(event, onCrash);

  try {
    await buildTether();
    const postgres = await startBenchPostgres(DATA_DIR, log);
    cleanups.push(() => postgres.stop());
    await postgres.recreate(DATABASE);
    const url = postgres.urlFor(DATABASE);
    await runMigrations(url);
    const db = createDb({ connectionString: url, max: 4, applicationName: 'tether-bench' });
    cleanups.push(() => db.close());
    await db.query(BASELINE_SCHEMA);
    const probe = new pg.Client({ connectionString: url, application_name: 'tether-bench-probe' });
    await probe.connect();
    cleanups.push(() => probe.end());

    const fleetSize = Math.max(0, ...scenarios.map((s) => s.needs(options.quick).nodes));
    const fleetStarted = performance.now();
    const fleet = await createFleet(db, 'bench', fleetSize);
    await db.query(`VACUUM (ANALYZE) nodes, runtime_node_presence`);
    const took = ((performance.now() - fleetStarted) / 1000).toFixed(1);
    log(`${fleetSize} node identities registered in ${took} s`);

    // Servers still running on the way out (an interrupted run) are stopped here.
    const running = new Set<ServerProcess>();
    cleanups.push(() => Promise.all([...running].map((s) => s.stop())));
    const ctx: BenchContext = {
      quick: options.quick,
      generators: Math.max(2, options.generators),
      postgres,
      postmasterPid: await postgres.postmasterPid(),
      db,
      probe,
      async startServer(target, label, startOptions = {}) {
        const logFile = join(DATA_DIR, `${label}-${target}.log`);
        const server = await startServer(target, url, logFile, startOptions);
        running.add(server);
        return { ...server, stop: () => (running.delete(server), server.stop()) };
      },
      presenceTables: { tether: 'runtime_node_presence', baseline: BASELINE_TABLE },
      fleet,
      log,
    };

    const results: BenchResults = {
      mode: options.quick ? 'quick' : 'full',
      startedAt: startedAt.toISOString(),
      finishedAt: '',
      machine: await machineFacts(probe),
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
        const { scaled, ...result } = await scenario.run(ctx);
        const floors = result.floors.map((f) => ({ ...f, ...(ctx.quick && scaled && { scaled }) }));
        results.scenarios.push({ name: scenario.name, title: scenario.title, ...result, floors });
        results.floors.push(...floors.map((f) => ({ scenario: scenario.name, ...f })));
      } catch (error) {
        log(`${scenario.name} failed: ${stack(error)}`);
        results.failures.push({ name: scenario.name, error: stack(error) });
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
    // From here on a signal or a crash exits at once (`stop` does nothing twice).
    if (!interrupted) {
      interrupted = true;
      await cleanUp();
    }
  }
}

function parse(argv: string[]) {
  try {
    const { values } = parseArgs({
      // pnpm forwards a literal "--" in front of the arguments when run through the root script.
      args: argv.filter((a) => a !== '--'),
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        generators: { type: 'string', default: '2' },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    });
    if (values.help) console.log(USAGE);
    if (values.list) for (const s of SCENARIOS) console.log(`${s.name.padEnd(16)} ${s.title}`);
    if (values.help || values.list) return 0;
    const generators = Number.parseInt(values.generators, 10);
    if (!Number.isInteger(generators) || generators < 2) {
      throw new Error('--generators must be an integer ≥ 2');
    }
    const only = values.only ? values.only.split(',').map((s) => s.trim()) : null;
    const unknown = only?.filter((name) => !SCENARIOS.some((s) => s.name === name)) ?? [];
    if (unknown.length > 0) throw new Error(`unknown scenario: ${unknown.join(', ')}`);
    return { quick: values.quick, only, generators };
  } catch (error) {
    console.error(`${message(error)}\n\n${USAGE}`);
    return 2;
  }
}

const parsed = parse(process.argv.slice(2));
(typeof parsed === 'number' ? Promise.resolve(parsed) : runBench(parsed)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(stack(error));
    process.exit(1);
  },
);
