import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // dist/ current (packed by the package test), then the PostgreSQL ladder for the wire tests.
    globalSetup: ['./test/build-setup.ts', './test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: ['default', 'json'],
    outputFile: { json: '../../.test-results/client.json' },
  },
});
