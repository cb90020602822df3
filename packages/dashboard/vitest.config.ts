import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Chromium and the dashboard build present (one clear line if not), then the control
    // plane's PostgreSQL ladder: DATABASE_URL or one embedded PostgreSQL per run, one database
    // per test file.
    globalSetup: ['./test/browser/preflight.ts', './test/browser/global-setup.ts'],
    pool: 'forks',
    // One browser and one server at a time: the files share two cores with the server and
    // the nodes they start, and the 10 000-node timings are printed from an otherwise idle run.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default', 'json'],
    outputFile: { json: '../../.test-results/dashboard.json' },
  },
});
