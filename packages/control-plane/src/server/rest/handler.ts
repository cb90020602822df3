/**
 * The REST surface under `/api/v1`: plain JSON in and out, one operation per query and mutation
 * (routes.ts). Each request is served by the same procedure as its tRPC twin, through the
 * router's caller: the same context builder (bearer token, announced contract version, peer address), the
 * same middleware chain (auth, version ceiling, draining, rate limits, metrics), the same input
 * validation and the same error projection. Only the envelope differs: the answer is the
 * procedure's output itself, and an error is `{ "error": { code, message, details? } }` with
 * the registry's HTTP status.
 *
 * Requests are read straight from Node's IncomingMessage (no fetch emulation), which keeps a
 * REST heartbeat as cheap as the tRPC one (docs/performance.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_REGISTRY, TetherError } from '@tether/contracts';
import type { Context } from '../../trpc/context.js';
import { toTetherError, TRPCError } from '../../trpc/error-formatter.js';
import { createCallerFactory } from '../../trpc/init.js';
import { appRouter } from '../../trpc/root.js';
import { readBody, sendJson } from '../http-json.js';
import { queryInput, type RestRoutes } from './routes.js';

export const REST_PREFIX = '/api/v1';

const createCaller = createCallerFactory(appRouter);

type Caller = ReturnType<typeof createCaller>;

/** `caller['session']['get']` for `session.get`. */
export function procedureOf(caller: Caller, path: string): (input: unknown) => Promise<unknown> {
  let target: unknown = caller;
  for (const segment of path.split('.')) target = (target as Record<string, unknown>)[segment];
  return target as (input: unknown) => Promise<unknown>;
}

export function callerFor(ctx: Context, signal?: AbortSignal): Caller {
  return createCaller(ctx, signal === undefined ? undefined : { signal });
}

/** Anything a call threw, as the TRPCError the error projection reads. */
export function asTrpcError(cause: unknown): TRPCError {
  return cause instanceof TRPCError
    ? cause
    : new TRPCError({ code: 'INTERNAL_SERVER_ERROR', cause: cause });
}

/** The REST error body with the registry's status (and `Retry-After` when the error names a wait). */
export function sendRestError(
  res: ServerResponse,
  error: TetherError,
  headers: Record<string, string> = {},
): void {
  const retryAfterMs = error.details?.retryAfterMs;
  const extra =
    typeof retryAfterMs === 'number'
      ? { ...headers, 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1_000))) }
      : headers;
  sendJson(res, ERROR_REGISTRY[error.code].httpStatus, { error: error.toShape() }, extra);
}

export const TOO_LARGE = (): TetherError =>
  new TetherError('request.too_large', 'The request body exceeds the size limit.');

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return true;
  const type = header.split(';')[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface RestHandlerOptions {
  routes: RestRoutes;
  maxBodyBytes: number;
  context: (req: IncomingMessage, res: ServerResponse) => Promise<Context>;
  /** Answers 413 and closes the connection (the rest of the body is not read). */
  tooLarge: (res: ServerResponse) => void;
  onInternalError: (error: TRPCError, procedure: string) => void;
}

type Outcome = { input: unknown } | { error: TetherError; headers?: Record<string, string> };

async function readInput(
  req: IncomingMessage,
  url: URL,
  match: NonNullable<ReturnType<RestRoutes['match']>>,
  options: RestHandlerOptions,
): Promise<Outcome | 'too-large' | 'gone'> {
  const { route, params } = match;
  if (!BODY_METHODS.has(route.method)) {
    return { input: { ...queryInput(route, url.searchParams), ...params } };
  }
  if (!isJsonContentType(req.headers['content-type'])) {
    return {
      error: new TetherError('request.invalid', 'Send the request body as application/json.', {
        contentType: String(req.headers['content-type']).slice(0, 128),
      }),
    };
  }
  let text: string | null;
  try {
    text = await readBody(req, options.maxBodyBytes);
  } catch {
    return 'gone';
  }
  if (text === null) return 'too-large';
  let body: unknown;
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      return { error: new TetherError('request.malformed', 'The request body is not valid JSON.') };
    }
  }
  if (route.pathParams.length === 0) return { input: body };
  // Path parameters name the resource; they win over a body field of the same name.
  if (body === undefined) return { input: { ...params } };
  return { input: isPlainObject(body) ? { ...body, ...params } : body };
}

export function createRestHandler(
  options: RestHandlerOptions,
): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> {
  const { routes } = options;
  return async (req, res, url) => {
    const method = req.method ?? 'GET';
    const path = url.pathname.slice(REST_PREFIX.length) || '/';
    let match: ReturnType<RestRoutes['match']>;
    try {
      match = routes.match(method, path);
    } catch {
      return sendRestError(
        res,
        new TetherError('request.invalid', 'A path parameter is not valid percent-encoding.'),
      );
    }
    if (match === null) {
      const allowed = routes.methodsAt(path);
      if (allowed.length > 0) {
        return sendRestError(
          res,
          new TetherError(
            'request.invalid',
            `${method} is not accepted here; use ${allowed.join(' or ')}.`,
            {
              allow: allowed,
            },
          ),
          { allow: allowed.join(', ') },
        );
      }
      return sendRestError(
        res,
        new TetherError(
          'request.unknown_procedure',
          `No operation ${method} ${REST_PREFIX}${path}.`,
        ),
      );
    }
    const read = await readInput(req, url, match, options);
    if (read === 'gone') return;
    if (read === 'too-large') return options.tooLarge(res);
    if ('error' in read) return sendRestError(res, read.error, read.headers);
    const { procedure } = match.route;
    try {
      const ctx = await options.context(req, res);
      const data = await procedureOf(callerFor(ctx), procedure)(read.input);
      sendJson(res, 200, data ?? null);
    } catch (cause) {
      const error = asTrpcError(cause);
      if (error.code === 'INTERNAL_SERVER_ERROR') options.onInternalError(error, procedure);
      sendRestError(res, toTetherError(error));
    }
  };
}
