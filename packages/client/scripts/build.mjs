// Builds dist/: index.js (ESM, esbuild) and index.d.ts (one self-contained declaration file,
// rollup-plugin-dts). `@tether/contracts` is bundled into both; tRPC, zod and superjson stay
// imports (peer dependencies and a dependency), so nothing of the server reaches consumers.
// Fails when the declarations import anything else.
import { spawnSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { rollup } from 'rollup';
import { dts } from 'rollup-plugin-dts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const entry = join(root, 'src', 'index.ts');

/** What consumers install next to the client; everything else is bundled. */
const EXTERNAL = ['@trpc/client', '@trpc/server', 'zod', 'superjson'];
const isExternal = (id) => EXTERNAL.some((name) => id === name || id.startsWith(`${name}/`));

await rm(dist, { recursive: true, force: true });

await build({
  entryPoints: [entry],
  outfile: join(dist, 'index.js'),
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  external: EXTERNAL.flatMap((name) => [name, `${name}/*`]),
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});

// Declarations: one tsc pass over the client and the contracts, then rolled into one file.
const types = join(dist, '.types');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const emitted = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
if (emitted.status !== 0) throw new Error('tsc failed to emit the declarations');
const contractsTypes = join(types, 'contracts', 'src', 'index.d.ts');
const bundle = await rollup({
  input: join(types, 'client', 'src', 'index.d.ts'),
  external: isExternal,
  plugins: [
    {
      name: 'tether-contracts',
      resolveId: (id) => (id === '@tether/contracts' ? contractsTypes : null),
    },
    // The `external` list decides, not "everything under node_modules is external".
    dts({ respectExternal: true }),
  ],
  onwarn(warning, warn) {
    // Circular imports between contract modules are fine in declarations.
    if (warning.code === 'CIRCULAR_DEPENDENCY') return;
    warn(warning);
  },
});
await bundle.write({ file: join(dist, 'index.d.ts'), format: 'es' });
await bundle.close();
await rm(types, { recursive: true, force: true });

// The declarations may import only the external packages.
const declarations = await readFile(join(dist, 'index.d.ts'), 'utf8');
const imported = [
  // import/export … from 'x' statements, and import('x') types anywhere.
  ...declarations.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm),
  ...declarations.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
].map((m) => m[1]);
const stray = [...new Set(imported.filter((id) => !isExternal(id)))];
if (stray.length > 0) {
  throw new Error(`dist/index.d.ts imports what consumers do not have: ${stray.join(', ')}`);
}

// The bundle runs in browsers too: no Node-only globals or modules (the contracts included).
const code = await readFile(join(dist, 'index.js'), 'utf8');
const nodeOnly = [...new Set(code.match(/\b(?:Buffer|process)\.\w+|["']node:[\w/]+["']/g) ?? [])];
if (nodeOnly.length > 0) {
  throw new Error(`dist/index.js uses Node-only APIs: ${nodeOnly.join(', ')}`);
}
