/**
 * `/api/docs`: a human-readable reference of the REST API (Swagger UI, from the
 * `swagger-ui-dist` package), rendered from `/api/v1/openapi.json`. Everything it loads comes
 * from this server: the page works on a machine without internet access, and its
 * Content-Security-Policy forbids anything else. Assets are served from the package's files
 * under a versioned path, so browsers may cache them for good.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TetherError } from '@tether/contracts';
import { sendRestError } from './handler.js';

export const DOCS_PATH = '/api/docs';

const require = createRequire(import.meta.url);
const packageJson = require.resolve('swagger-ui-dist/package.json');
const DIST = dirname(packageJson);
const VERSION = (require('swagger-ui-dist/package.json') as { version: string }).version;
const ASSET_PREFIX = `${DOCS_PATH}/assets/${VERSION}/`;

/** The package files the page uses, with their content types. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

const INIT_PATH = `${DOCS_PATH}/init.js`;

const INIT_SCRIPT = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/api/v1/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
`;

const HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Tether REST API</title>
    <link rel="stylesheet" href="${ASSET_PREFIX}swagger-ui.css" />
    <link rel="icon" type="image/png" href="${ASSET_PREFIX}favicon-32x32.png" sizes="32x32" />
    <link rel="icon" type="image/png" href="${ASSET_PREFIX}favicon-16x16.png" sizes="16x16" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${ASSET_PREFIX}swagger-ui-bundle.js"></script>
    <script src="${INIT_PATH}"></script>
  </body>
</html>
`;

/** Only this server: scripts and styles from here (Swagger UI sets inline styles), data: images. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

function send(
  res: ServerResponse,
  body: string | Buffer,
  type: string,
  cache: string,
  extra: Record<string, string> = {},
): void {
  res.writeHead(200, {
    ...extra,
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': cache,
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

export function createDocsHandler(): (
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
) => void {
  const files = new Map<string, Promise<Buffer>>();
  return (req, res, path) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendRestError(
        res,
        new TetherError('request.invalid', `${req.method} is not accepted here; use GET.`, {
          allow: ['GET'],
        }),
        { allow: 'GET, HEAD' },
      );
    }
    if (path === DOCS_PATH || path === `${DOCS_PATH}/`) {
      return send(res, HTML, 'text/html; charset=utf-8', 'no-cache', {
        'content-security-policy': CSP,
      });
    }
    if (path === INIT_PATH)
      return send(res, INIT_SCRIPT, 'text/javascript; charset=utf-8', 'no-cache');
    const name = path.startsWith(ASSET_PREFIX) ? path.slice(ASSET_PREFIX.length) : null;
    const type = name === null ? undefined : ASSETS[name];
    if (name === null || type === undefined) {
      return sendRestError(
        res,
        new TetherError('request.unknown_procedure', `Nothing at ${path}.`),
      );
    }
    let file = files.get(name);
    if (!file) {
      file = readFile(join(DIST, name));
      files.set(name, file);
    }
    file
      .then((body) => send(res, body, type, 'public, max-age=31536000, immutable'))
      .catch(() => {
        files.delete(name);
        sendRestError(
          res,
          new TetherError('system.internal', 'The documentation assets are missing.'),
        );
      });
  };
}
