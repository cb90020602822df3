/**
 * Who may read `/metrics`. The page names every procedure with its call and error counts,
 * connection and pool counts: reconnaissance material, so it is never served to the open network
 * by default. Rules (decided once at start, see `metricsExposure`):
 *  - `TETHER_METRICS_TOKEN` set → every read needs `Authorization: Bearer <token>`, wherever
 *    metrics are served; the comparison is constant-time (SHA-256 of both sides, then
 *    `timingSafeEqual`, so neither the content nor the length leaks through timing);
 *  - `TETHER_METRICS_LISTEN` set → metrics are served only on that address (the main port
 *    answers 404), e.g. on a private network or loopback for a sidecar scraper;
 *  - neither set → served on the main port only when it listens on loopback; on any other
 *    address the main port answers 404, and the server warns at start.
 */
import { secretsEqual } from '../auth/tokens.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Registry } from 'prom-client';
import { bearerToken } from '../trpc/context.js';
import { sendJson } from './http-json.js';

export interface MetricsExposure {
  /** Serve `/metrics` on the main listener. */
  onMainPort: boolean;
  /** The bearer token every read must present, if configured. */
  token: string | undefined;
  /** Why metrics are not on the main port (the 404 body says so), when they are not. */
  notServedReason: string | undefined;
  /** Operator-facing warnings to log at start. */
  warnings: string[];
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (h.startsWith('::ffff:')) return isLoopbackHost(h.slice('::ffff:'.length));
  return isIP(h) === 4 && h.startsWith('127.');
}

export function metricsExposure(options: {
  host: string;
  token: string | undefined;
  listen: { host: string; port: number } | undefined;
}): MetricsExposure {
  const warnings: string[] = [];
  if (options.listen) {
    if (!options.token && !isLoopbackHost(options.listen.host)) {
      warnings.push(
        `metrics are served without a token on ${options.listen.host}:${options.listen.port}: anyone who can reach that address reads them (set TETHER_METRICS_TOKEN unless that network is private)`,
      );
    }
    return {
      onMainPort: false,
      token: options.token,
      notServedReason: 'metrics are served on TETHER_METRICS_LISTEN only',
      warnings,
    };
  }
  if (options.token || isLoopbackHost(options.host)) {
    return { onMainPort: true, token: options.token, notServedReason: undefined, warnings };
  }
  warnings.push(
    `/metrics is not served: the server listens on ${options.host} (not loopback) and neither TETHER_METRICS_TOKEN nor TETHER_METRICS_LISTEN is set`,
  );
  return {
    onMainPort: false,
    token: undefined,
    notServedReason:
      'metrics are not served on a non-loopback address without TETHER_METRICS_TOKEN or TETHER_METRICS_LISTEN',
    warnings,
  };
}

/** Constant-time (auth/tokens.ts `secretsEqual`): the time taken depends on neither the token nor its length. */
export function metricsTokenMatches(presented: string | null, expected: string): boolean {
  return secretsEqual(presented ?? '', expected) && presented !== null;
}

/** Answers one `/metrics` request: 401 without the configured token, else the registry. */
export function serveMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  registry: Registry,
  token: string | undefined,
): void {
  if (token !== undefined && !metricsTokenMatches(bearerToken(req.headers.authorization), token)) {
    res.setHeader('www-authenticate', 'Bearer realm="tether-metrics"');
    sendJson(res, 401, { error: 'unauthorized' });
    return;
  }
  registry
    .metrics()
    .then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    })
    .catch(() => sendJson(res, 500, { status: 'metrics unavailable' }));
}

/** The metrics-only listener of `TETHER_METRICS_LISTEN`: `/metrics`, everything else 404. */
export function createMetricsServer(registry: Registry, token: string | undefined): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      serveMetrics(req, res, registry, token);
      return;
    }
    sendJson(res, 404, { error: 'not found' });
  });
}
