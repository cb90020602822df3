/**
 * The dashboard at `/` over real HTTP: caching and CSP headers, the SPA fallback for the
 * dashboard's routes only, the API paths never shadowed, a clear page (and log line) when the
 * build is missing, and CORS for the origins in TETHER_CORS_ORIGINS only. A small stand-in build
 * (index.html + a hashed asset) keeps the test independent of Vite.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import { startTestServer, type TestServer } from '../server.js';

const INDEX =
  '<!doctype html><html><head><script type="module" src="/assets/app-Ab12Cd34.js"></script></head><body><div id="root"></div></body></html>';
const ASSET = 'console.log("dashboard");';
const DEV_ORIGIN = 'http://localhost:5173';

let dir: string;
let server: TestServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tether-dashboard-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), INDEX);
  writeFileSync(join(dir, 'assets', 'app-Ab12Cd34.js'), ASSET);
  writeFileSync(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  server = await startTestServer({
    env: {
      TETHER_DASHBOARD_DIR: dir,
      TETHER_CORS_ORIGINS: `${DEV_ORIGIN}, https://ops.example.com`,
    },
  });
});

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${server.url}${path}`, { headers });

describe('dashboard assets', () => {
  it('serves index.html at / with no-cache and a CSP that allows nothing external and no inline script', async () => {
    const res = await get('/', { accept: 'text/html' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(await res.text()).toBe(INDEX);
    const csp = res.headers.get('content-security-policy') ?? '';
    const directives = new Map(
      csp.split(';').map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name!, values] as const;
      }),
    );
    expect(directives.get('default-src')).toEqual(["'self'"]);
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('style-src')).toEqual(["'self'"]);
    const host = new URL(server.url).host;
    expect(directives.get('connect-src')).toEqual(["'self'", `ws://${host}`, `wss://${host}`]);
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:\/\/(?!localhost|127)/);
  });

  it('serves hashed assets immutable for a year; other files revalidated; unknown files 404', async () => {
    const asset = await get('/assets/app-Ab12Cd34.js');
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await asset.text()).toBe(ASSET);
    const icon = await get('/favicon.svg');
    expect(icon.status).toBe(200);
    expect(icon.headers.get('cache-control')).toBe('no-cache');
    for (const path of [
      '/assets/missing-123.js',
      '/assets/%2e%2e%2findex.html',
      '/assets/.env',
      '/robots.txt',
    ]) {
      expect((await get(path)).status, path).toBe(404);
    }
  });

  it("answers the dashboard's routes with index.html (SPA fallback) and nothing else", async () => {
    for (const path of [
      '/fleet',
      '/nodes/node-abc',
      '/sessions',
      '/sessions/0f8fad5b-d9cb-469f-a165-70867728950e',
      '/pairing',
      '/keys',
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(/^text\/html/);
      expect(await res.text(), path).toBe(INDEX);
    }
    for (const path of ['/nowhere', '/nodes', '/nodes/a/b', '/keys/extra']) {
      expect((await get(path)).status, path).toBe(404);
    }
  });

  it('never shadows the API, health, docs or metrics paths', async () => {
    const info = await get('/trpc/system.info');
    expect(info.status).toBe(200);
    expect(await info.json()).toMatchObject({
      result: { data: { json: { contractVersion: '2.0' } } },
    });
    const rest = await get('/api/v1/system/info');
    expect(rest.status).toBe(200);
    expect(rest.headers.get('content-type')).toMatch(/^application\/json/);
    expect((await get('/api/v1/openapi.json')).headers.get('content-type')).toMatch(/json/);
    expect((await get('/api/docs')).headers.get('content-security-policy')).toContain(
      "style-src 'self' 'unsafe-inline'",
    );
    expect(await (await get('/livez')).json()).toEqual({ status: 'ok' });
    expect((await get('/readyz')).status).toBe(200);
    const unknownApi = await get('/api/v1/no-such-thing');
    expect(unknownApi.status).toBe(404);
    expect(unknownApi.headers.get('content-type')).toMatch(/json/);
    // The JSON index stays for scripts that ask for JSON.
    const index = await get('/', { accept: 'application/json' });
    expect(await index.json()).toMatchObject({ api: '/trpc', rest: '/api/v1', dashboard: '/' });
  });
});

describe('CORS (TETHER_CORS_ORIGINS)', () => {
  const preflight = (path: string, origin: string) =>
    fetch(`${server.url}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-tether-client-version',
      },
    });

  it('answers a preflight from a listed origin, and marks its responses readable', async () => {
    for (const path of ['/trpc/session.create', '/api/v1/sessions']) {
      const res = await preflight(path, DEV_ORIGIN);
      expect(res.status, path).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(DEV_ORIGIN);
      expect(res.headers.get('access-control-allow-methods')).toContain('POST');
      expect(res.headers.get('access-control-allow-headers')).toContain('authorization');
      expect(res.headers.get('access-control-allow-headers')).toContain('x-tether-client-version');
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    }
    const call = await fetch(`${server.url}/api/v1/sessions`, {
      method: 'POST',
      headers: {
        origin: 'https://ops.example.com',
        authorization: `Bearer ${server.adminToken}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ name: 'from another origin' }),
    });
    expect(call.status).toBe(200);
    expect(call.headers.get('access-control-allow-origin')).toBe('https://ops.example.com');
    expect(call.headers.get('vary')).toContain('Origin');
  });

  it('refuses a preflight from any other origin and gives its responses no CORS header', async () => {
    const refused = await preflight('/trpc/session.create', 'https://evil.example.com');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    const res = await fetch(`${server.url}/trpc/system.info`, {
      headers: { origin: 'https://evil.example.com' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    // The dashboard's own pages never carry CORS headers.
    expect(
      (await get('/', { origin: DEV_ORIGIN })).headers.get('access-control-allow-origin'),
    ).toBeNull();
  });
});

describe('TETHER_CORS_ORIGINS', () => {
  it('is a comma list of exact origins (none by default); anything else is a configuration error', () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(
      loadConfig({ TETHER_CORS_ORIGINS: ' http://localhost:5173 ,https://ops.example.com:8443,' })
        .corsOrigins,
    ).toEqual(['http://localhost:5173', 'https://ops.example.com:8443']);
    for (const bad of [
      '*',
      'localhost:5173',
      'http://localhost:5173/',
      'https://a.example/app',
      'ftp://a.example',
    ]) {
      expect(() => loadConfig({ TETHER_CORS_ORIGINS: bad }), bad).toThrow(ConfigError);
    }
  });
});

describe('missing build', () => {
  it('answers a page that says how to build it (503) and logs it once; the API still works', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'tether-no-dashboard-'));
    try {
      await using bare = await startTestServer({ env: { TETHER_DASHBOARD_DIR: empty } });
      const res = await fetch(`${bare.url}/fleet`);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      const page = await res.text();
      expect(page).toContain('The dashboard is not built');
      expect(page).toContain('pnpm --filter @tether/dashboard build');
      expect((await fetch(`${bare.url}/assets/app.js`)).status).toBe(404);
      expect((await fetch(`${bare.url}/trpc/system.info`)).status).toBe(200);
      const lines = bare
        .logs()
        .split('\n')
        .filter((l) => l.includes('the dashboard is not built'));
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, dir: empty });
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
