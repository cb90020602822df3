import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The control plane's PostgreSQL ladder: DATABASE_URL or one embedded PostgreSQL per run,
    // a migrated template database, one clone per test file.
    globalSetup: ['./test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', 'json'],
    outputFile: { json: '../../.test-results/node-client.json' },
  },
});
