// The port, held from the first milliseconds of `tether-server serve` (docs/decisions/0023).
//
// Loading the server and reaching its database takes seconds; a port nobody listens on answers
// ECONNREFUSED, and every client backs off exponentially, so a fleet comes back long after the
// server is ready. This listener binds the port before anything else is loaded and answers
// what arrives meanwhile: /livez 200, /readyz 503 `starting`, everything else (WebSocket
// upgrades included) 503 with `Retry-After` and the typed `system.unavailable` error carrying
// `retryAfterMs` — a slot of its own, at least 1 s away, handed out at 500 clients per second, so
// the fleet comes back at a pace and not all in one instant.
// Once the server is up it adopts the listener (src/server/listen.ts, through the global
// `Symbol.for('tether.bootListener')`): new connections go to the real server from then on.
// Plain JavaScript with Node built-ins only, so it costs nothing to load. If the port cannot be bound here (taken, invalid), nothing is held: the server binds
// it itself and reports the error as it always did.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { performance } from 'node:perf_hooks';

const KEY = Symbol.for('tether.bootListener');
/** The soonest a refused client is asked back. */
export const RETRY_MIN_MS = 1_000;
/** Clients asked back per second, at most: the herd returns at this pace (appointment book). */
export const RETURN_PER_SECOND = 500;
/** The longest wait handed out; past it, clients are spread over its second half. */
export const RETRY_MAX_MS = 30_000;

/** The refusal as the server's formatter shapes a `system.unavailable` (a test compares them). */
export function startingRefusal(retryAfterMs) {
  const message = `The server is starting; retry in ${retryAfterMs} ms.`;
  return {
    error: {
      message,
      code: -32603,
      data: {
        code: 'SERVICE_UNAVAILABLE',
        httpStatus: 503,
        tetherError: { code: 'system.unavailable', message, details: { retryAfterMs } },
      },
    },
  };
}

/**
 * Each refused client gets its own slot, one `1 / RETURN_PER_SECOND` after the last one handed
 * out and at least `RETRY_MIN_MS` away, so a fleet comes back at a pace the server can take
 * instead of all at once — and, on a machine it shares with its clients, without a retry storm
 * that starves the server it waits for. As the server's admission does once it runs.
 */
function appointmentBook(random, now = () => performance.now()) {
  let next = 0;
  return () => {
    const at = now();
    const slot = Math.max(next, at + RETRY_MIN_MS) + 1_000 / RETURN_PER_SECOND;
    if (slot - at > RETRY_MAX_MS)
      return Math.ceil(RETRY_MAX_MS / 2 + (random() * RETRY_MAX_MS) / 2);
    next = slot;
    return Math.ceil(slot - at);
  };
}

function refusalHead(body, retryMs) {
  return {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'retry-after': String(Math.ceil(retryMs / 1_000)),
    connection: 'close',
  };
}

/** Same rules as the server's configuration (TETHER_PORT, TETHER_HOST, TETHER_LISTEN_BACKLOG). */
function address(env) {
  const int = (value, fallback, min, max) => {
    if (value === undefined || value === '') return fallback;
    const n = Number(value);
    return Number.isInteger(n) && n >= min && n <= max ? n : null;
  };
  const port = int(env.TETHER_PORT, 4_000, 0, 65_535);
  const backlog = int(env.TETHER_LISTEN_BACKLOG, 4_096, 1, 65_535);
  const host =
    env.TETHER_HOST === undefined || env.TETHER_HOST === '' ? '0.0.0.0' : env.TETHER_HOST;
  return port === null || backlog === null ? null : { port, host, backlog };
}

/**
 * Binds the server's port and answers "starting" until the server adopts it (src/server/listen.ts).
 * Resolves once bound, or not (then nothing is held).
 */
export async function openBootListener(env = process.env, random = Math.random) {
  const at = address(env);
  if (at === null) return;
  const retryAfterMs = appointmentBook(random);
  const starting = createHttpServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/livez' || path === '/readyz') {
      const body = JSON.stringify(path === '/livez' ? { status: 'ok' } : { status: 'starting' });
      res.writeHead(path === '/livez' ? 200 : 503, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        connection: 'close',
      });
      return res.end(body);
    }
    const retryMs = retryAfterMs();
    const body = JSON.stringify(startingRefusal(retryMs));
    res.writeHead(503, refusalHead(body, retryMs));
    res.end(body);
  });
  starting.on('upgrade', (_req, socket) => {
    socket.on('error', () => socket.destroy());
    const retryMs = retryAfterMs();
    const body = JSON.stringify(startingRefusal(retryMs));
    const head = Object.entries(refusalHead(body, retryMs)).map(([k, v]) => `${k}: ${v}`);
    socket.end(['HTTP/1.1 503 Service Unavailable', ...head, '', body].join('\r\n'));
  });
  starting.on('clientError', (_error, socket) => socket.destroy());
  let target = starting;
  const server = createNetServer({ noDelay: true }, (socket) => target.emit('connection', socket));
  const bound = await new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen({ port: at.port, host: at.host, backlog: at.backlog }, () => resolve(true));
  });
  if (!bound) {
    server.close();
    return;
  }
  globalThis[KEY] = {
    server,
    port: at.port,
    host: at.host,
    adopt(httpServer) {
      target = httpServer;
      starting.close();
    },
  };
}
