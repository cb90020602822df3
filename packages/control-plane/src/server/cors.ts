/**
 * Cross-origin access to the API (`/trpc`, `/api/v1`) for the origins listed in
 * `TETHER_CORS_ORIGINS` (e.g. the dashboard on Vite's dev server): preflights are answered, and
 * responses to a listed origin carry `Access-Control-Allow-Origin`. Credentials travel in the
 * `Authorization` header (or tRPC's connection params), never in cookies, so
 * `Access-Control-Allow-Credentials` is not sent. Any other origin gets no CORS header, so its
 * browser refuses to hand it the answer; a refused preflight is answered 403.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'x-tether-client-version',
  'trpc-accept',
  'last-event-id',
  'idempotency-key',
].join(', ');
const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
const EXPOSED_HEADERS = 'retry-after, x-request-id';

export class Cors {
  private readonly origins: ReadonlySet<string>;

  constructor(origins: readonly string[]) {
    this.origins = new Set(origins);
  }

  get enabled(): boolean {
    return this.origins.size > 0;
  }

  /**
   * Adds the CORS headers for an allowed origin, and answers a preflight (`OPTIONS` with
   * `Access-Control-Request-Method`). Returns true when the request has been answered.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    const preflight =
      req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (origin === undefined) return false;
    const allowed = this.origins.has(origin);
    if (allowed) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
    }
    if (!preflight) return false;
    if (!allowed) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', vary: 'Origin' });
      res.end('Origin not allowed (TETHER_CORS_ORIGINS)\n');
      return true;
    }
    res.writeHead(204, {
      'access-control-allow-methods': ALLOWED_METHODS,
      'access-control-allow-headers': ALLOWED_HEADERS,
      'access-control-max-age': '600',
      'content-length': '0',
    });
    res.end();
    return true;
  }
}
