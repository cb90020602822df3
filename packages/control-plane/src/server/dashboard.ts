/**
 * The web dashboard (`packages/dashboard`, built by Vite into its `dist/`), served at `/`:
 *  - `/assets/*` are content-hashed: cached for a year (`immutable`);
 *  - `index.html` answers `/` and the dashboard's own routes (`/fleet`, `/nodes/…`,
 *    `/sessions…`, `/pairing`, `/keys`), never cached, with a Content-Security-Policy that allows
 *    nothing from elsewhere and no inline script;
 *  - any other file at the top of `dist/` (favicon) is served revalidated (`no-cache`).
 * The API paths (`/trpc`, `/api`, `/livez`, `/readyz`, `/metrics`) are routed before this
 * handler ever sees a request, so nothing here can shadow them.
 * When the build is missing the dashboard's paths answer a page that says how to build it (503)
 * and the server logs it once at start; the API is unaffected.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `pnpm --filter @tether/dashboard build` writes the bundle, from this source file. */
export const DEFAULT_DASHBOARD_DIR = resolve(
  fileURLToPath(new URL('.', import.meta.url)),
  '../../../dashboard/dist',
);

/** The dashboard's client-side routes: each answers `index.html` (the app routes in the browser). */
const APP_ROUTE = /^\/(?:fleet|pairing|keys|sessions(?:\/[^/]+)?|nodes\/[^/]+)\/?$/;

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

/** A host name as it may appear in a CSP source (anything else is left out of the policy). */
const HOST_SOURCE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * Nothing from elsewhere: scripts, styles, images and connections from this origin only (plus
 * WebSockets to this host, which older browsers do not count as 'self'), no inline script, no
 * plugins, no framing.
 */
export function dashboardCsp(host: string | undefined): string {
  const ws = host !== undefined && HOST_SOURCE.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${ws}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export interface DashboardFiles {
  dir: string;
  /** null: no build found (the reason is in `missing`). */
  indexHtml: Buffer | null;
  missing: string | null;
  /** Files at the top of dist/ other than index.html (favicon…), by name. */
  topLevel: Set<string>;
}

/** Reads what is built; never throws (a missing build is reported, not fatal). */
export function loadDashboard(dir: string): DashboardFiles {
  try {
    const indexHtml = readFileSync(join(dir, 'index.html'));
    const topLevel = new Set(
      readdirSync(dir).filter(
        (name) => name !== 'index.html' && statSync(join(dir, name)).isFile(),
      ),
    );
    return { dir, indexHtml, missing: null, topLevel };
  } catch {
    return {
      dir,
      indexHtml: null,
      missing: `the dashboard is not built: ${join(dir, 'index.html')} is missing`,
      topLevel: new Set(),
    };
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function missingPage(files: DashboardFiles): string {
  return `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>Tether: dashboard not built</title></head>
  <body>
    <h1>The dashboard is not built</h1>
    <p>This server runs, and its API answers at <code>/trpc</code> and <code>/api/v1</code>
    (reference at <a href="/api/docs">/api/docs</a>), but it found no dashboard files in
    <code>${escapeHtml(files.dir)}</code>.</p>
    <p>Build it with <code>pnpm --filter @tether/dashboard build</code> (or start the server with
    <code>pnpm start</code> from the repository root, which builds it first), then reload.</p>
  </body>
</html>
`;
}

/** Whether a path belongs to the dashboard (index, its routes, its assets, its top-level files). */
export function isDashboardPath(path: string): boolean {
  return (
    path === '/' ||
    path === '/index.html' ||
    APP_ROUTE.test(path) ||
    path.startsWith('/assets/') ||
    /^\/[^/]+\.[a-z0-9]+$/i.test(path)
  );
}

/**
 * Serves a dashboard path (`isDashboardPath`); answers 404 (as `notFound` shapes it) for an
 * asset or file that does not exist.
 */
export function createDashboardHandler(
  files: DashboardFiles,
  notFound: (res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse, path: string) => void {
  const cache = new Map<string, Promise<Buffer>>();
  const read = (name: string): Promise<Buffer> => {
    let file = cache.get(name);
    if (!file) {
      file = readFile(join(files.dir, name));
      cache.set(name, file);
      file.catch(() => cache.delete(name));
    }
    return file;
  };
  const send = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body: Buffer | string,
    headers: Record<string, string>,
  ): void => {
    res.writeHead(status, {
      ...headers,
      'content-length': String(Buffer.byteLength(body)),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  return (req, res, path) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(req, res, 405, 'Method not allowed\n', {
        allow: 'GET, HEAD',
        'content-type': 'text/plain; charset=utf-8',
      });
      return;
    }
    const page = path === '/' || path === '/index.html' || APP_ROUTE.test(path);
    if (files.indexHtml === null) {
      if (!page) return notFound(res);
      send(req, res, 503, missingPage(files), {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-cache',
        'content-security-policy': dashboardCsp(undefined),
      });
      return;
    }
    if (page) {
      send(req, res, 200, files.indexHtml, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-cache',
        'content-security-policy': dashboardCsp(req.headers.host),
        'x-frame-options': 'DENY',
      });
      return;
    }
    let name: string | null = null;
    let immutable = false;
    if (path.startsWith('/assets/')) {
      const rest = path.slice('/assets/'.length);
      // One level, plain file names only: no traversal, no hidden files.
      if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(rest)) {
        name = `assets/${rest}`;
        immutable = true;
      }
    } else {
      const top = path.slice(1);
      if (files.topLevel.has(top)) name = top;
    }
    const type = name === null ? undefined : TYPES[extname(name)];
    if (name === null || type === undefined) return notFound(res);
    read(name)
      .then((body) =>
        send(req, res, 200, body, {
          'content-type': type,
          'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        }),
      )
      .catch(() => notFound(res));
  };
}
