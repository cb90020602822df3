/**
 * The server bundle (`pnpm --filter @tether/control-plane build` → dist/server/tether-server.mjs,
 * decision 0022): `tether-server` runs it only while it is newer than every source, and the
 * bundle is the same server — migrations, version, REST docs assets, tRPC — run by plain node.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { adminQuery, databaseUrl } from '../postgres.js';
import { query } from '../http.js';
import { spawnServer } from '../process-server.js';
import { BUNDLE, chooseEntry } from '../../bin/entry.mjs';

const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

describe("tether-server's entry", () => {
  it('runs the bundle only when it exists and no source (nested files included) is newer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tether-entry-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const src = join(dir, 'src');
    const nested = join(src, 'server', 'main.ts');
    const manifest = join(dir, 'package.json');
    const bundle = join(dir, 'dist', 'tether-server.mjs');
    await mkdir(join(src, 'server'), { recursive: true });
    await mkdir(join(dir, 'dist'));
    await writeFile(nested, '');
    await writeFile(manifest, '{}');
    const sources = [src, manifest, join(dir, 'absent')];
    const at = (seconds: number) => new Date(1_800_000_000_000 + seconds * 1_000);
    for (const path of [nested, join(src, 'server'), src, manifest])
      await utimes(path, at(0), at(0));

    expect(chooseEntry(bundle, sources)).toBe('source'); // not built
    await writeFile(bundle, '');
    await utimes(bundle, at(10), at(10));
    expect(chooseEntry(bundle, sources)).toBe('bundle');
    await utimes(nested, at(20), at(20)); // an edit deep in src/
    expect(chooseEntry(bundle, sources)).toBe('source');
    await utimes(bundle, at(30), at(30));
    expect(chooseEntry(bundle, sources)).toBe('bundle');
    await utimes(manifest, at(40), at(40));
    expect(chooseEntry(bundle, sources)).toBe('source');
  });
});

describe('the server bundle', () => {
  it('builds, is chosen by the bin, and serves as the sources do: migrations, version, REST docs assets, tRPC, graceful stop', async () => {
    await promisify(execFile)(process.execPath, ['scripts/build-server.mjs'], {
      cwd: PACKAGE_DIR,
    });
    expect(chooseEntry()).toBe('bundle');
    // An empty database: the bundle finds and applies every migration.
    const adminUrl = inject('pgAdminUrl');
    const name = `tether_bundle_${randomBytes(5).toString('hex')}`;
    await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
    cleanups.push(() => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    const server = await spawnServer({ DATABASE_URL: databaseUrl(adminUrl, name) }, [BUNDLE]);
    cleanups.push(async () => {
      server.child.kill('SIGKILL');
      await server.exited;
    });

    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const lines = server
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const pkg = JSON.parse(await readFile(join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
      version: string;
    };
    // ../../package.json from the bundle is this package's manifest.
    expect(lines.find((l) => l.msg === 'configuration')?.serverVersion).toBe(pkg.version);
    // ../../migrations from the bundle is this package's migrations directory.
    const migrations = (await readdir(join(PACKAGE_DIR, 'migrations'))).filter((f) =>
      f.endsWith('.sql'),
    );
    const applied = lines.find((l) => l.msg === 'migrations applied')?.applied as string[];
    expect(applied).toEqual(expect.arrayContaining(migrations));
    expect(migrations.length).toBeGreaterThan(10);

    // swagger-ui-dist is found from the bundle (createRequire): the docs page and its CSS.
    const page = await (await fetch(`${server.url}/api/docs`)).text();
    const css = /href="([^"]+swagger-ui\.css)"/.exec(page)?.[1];
    expect(css).toBeDefined();
    const asset = await fetch(new URL(css!, server.url));
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toContain('text/css');

    const info = await query<{ contractVersion: string }>(server.url, 'system.info');
    expect(info.status).toBe(200);
    expect(info.data.contractVersion).toMatch(/^\d+\.\d+$/);

    server.child.kill('SIGTERM');
    expect(await server.exited, server.output().slice(-2000)).toBe(0);
  }, 120_000);
});
