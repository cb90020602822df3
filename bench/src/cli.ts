/**
 * `pnpm bench [--quick] [--only a,b] [--generators N] [--list]` — see docs/performance.md.
 * Exit codes: 0 every scenario ran (floors are reported, not enforced), 1 a scenario or the
 * harness failed, 2 usage error.
 */
import { parseArgs } from 'node:util';
import { runBench } from './run.js';
import { SCENARIOS } from './scenarios/index.js';

const USAGE = `Usage: pnpm bench [options]
  --quick            every scenario scaled down (about a minute): a smoke test, not a measurement
  --only a,b         run only these scenarios (${SCENARIOS.map((s) => s.name).join(', ')})
  --generators N     load-generator processes per load run (default 2, at least 2)
  --list             list the scenarios and exit
PostgreSQL: DATABASE_URL if set (needs CREATE DATABASE), else embedded under bench/.data.`;

async function main(): Promise<number> {
  // pnpm forwards a literal "--" in front of the arguments when run through the root script.
  const args = process.argv.slice(2).filter((a) => a !== '--');
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        generators: { type: 'string', default: '2' },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    for (const s of SCENARIOS) console.log(`${s.name.padEnd(16)} ${s.title}`);
    return 0;
  }
  const generators = Number.parseInt(values.generators, 10);
  if (!Number.isInteger(generators) || generators < 2) {
    console.error(`--generators must be an integer ≥ 2\n\n${USAGE}`);
    return 2;
  }
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : null;
  const unknown = only?.filter((name) => !SCENARIOS.some((s) => s.name === name)) ?? [];
  if (unknown.length > 0) {
    console.error(`unknown scenario: ${unknown.join(', ')}\n\n${USAGE}`);
    return 2;
  }
  return runBench({ quick: values.quick, only, generators });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
