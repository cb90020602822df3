/**
 * `GET /api/v1/events`: the fleet event feed as plain-JSON Server-Sent Events, for clients that
 * do not speak tRPC. It is the `fleet.events` subscription itself, called through the router
 * (same auth, visibility, filters, resume and slow-subscriber rules), framed as
 *
 *     event: presence.changed
 *     id: 42
 *     data: {"id":"42","at":"…","type":"presence.changed",…}
 *
 * Resume: the `Last-Event-ID` header (what an EventSource resends) or `?lastEventId=`; the
 * header wins. Filters: `nodeId`, `sessionId`, `types` (repeated or comma-separated).
 *
 * Everything that can be refused is refused before the stream starts, with the REST error body
 * and the registry's status (an expired cursor is checked with one `fleet.list` read). A stream
 * that fails later (the subscriber fell too far behind) gets one `event: error` frame with the
 * same body and ends. The stream ends when the client goes away (its abort signal, handed to
 * the subscription) and when the subscription itself ends (shutdown, or whatever else ends a
 * subscription): it holds no signal or timer of its own beyond the keep-alive comments.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TetherError, type FleetEventView } from '@tether/contracts';
import { isTrackedEnvelope } from '@trpc/server';
import type { Context } from '../../trpc/context.js';
import { toTetherError, type TRPCError } from '../../trpc/error-formatter.js';
import { asTrpcError, callerFor, sendRestError } from './handler.js';

export const EVENTS_PATH = '/api/v1/events';

export interface EventStreamOptions {
  context: (req: IncomingMessage, res: ServerResponse) => Promise<Context>;
  /** A comment line every this many ms keeps proxies and clients from timing the stream out. */
  keepAliveMs: number;
  onInternalError: (error: TRPCError, procedure: string) => void;
}

/** `fleet.events` input from the query string and the Last-Event-ID header. */
function streamInput(req: IncomingMessage, url: URL): Record<string, unknown> {
  const filter: Record<string, unknown> = {};
  let lastEventId: string | undefined;
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    if (key === 'lastEventId') lastEventId = values.length === 1 ? values[0] : undefined;
    else if (key === 'types') filter.types = values.flatMap((v) => v.split(',')).filter(Boolean);
    else filter[key] = values.length === 1 ? values[0] : values;
  }
  const header = req.headers['last-event-id'];
  const resume = (Array.isArray(header) ? header[0] : header)?.trim();
  if (resume) lastEventId = resume;
  return {
    ...(lastEventId === undefined ? {} : { lastEventId }),
    ...(Object.keys(filter).length > 0 ? { filter } : {}),
  };
}

/** Validation messages name the query parameters, not the procedure's nested `filter` object. */
function restPaths(error: TetherError): TetherError {
  if (error.code !== 'request.invalid') return error;
  // fleet.list (the cursor check) calls the resume point `afterId`.
  const rename = (text: string): string =>
    text
      .replace(/\bfilter\.(?=\w)/g, '')
      .replace(/\bfilter\b/g, '(query)')
      .replace(/\bafterId\b/g, 'lastEventId');
  const details =
    error.details === undefined
      ? undefined
      : (JSON.parse(rename(JSON.stringify(error.details))) as Record<string, unknown>);
  return new TetherError(error.code, rename(error.message), details);
}

function refusal(cause: unknown): TetherError {
  const error = toTetherError(asTrpcError(cause));
  return restPaths(error);
}

function frame(event: FleetEventView): string {
  return `event: ${event.type}\nid: ${event.id}\ndata: ${JSON.stringify(event)}\n\n`;
}

export function createEventStreamHandler(
  options: EventStreamOptions,
): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> {
  return async (req, res, url) => {
    if (req.method !== 'GET') {
      return sendRestError(
        res,
        new TetherError('request.invalid', `${req.method} is not accepted here; use GET.`, {
          allow: ['GET'],
        }),
        { allow: 'GET' },
      );
    }
    const input = streamInput(req, url);
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    let events: AsyncIterable<unknown>;
    try {
      const ctx = await options.context(req, res);
      const caller = callerFor(ctx, gone.signal);
      if (typeof input.lastEventId === 'string') {
        // A cursor older than retention (or never issued) is answered 412 now, not mid-stream,
        // so an EventSource stops instead of reconnecting into the same error forever.
        await caller.fleet.list({
          afterId: input.lastEventId,
          ...(input.filter === undefined ? {} : { filter: input.filter as never }),
          limit: 1,
        });
      }
      events = await caller.fleet.events(input);
    } catch (cause) {
      const error = asTrpcError(cause);
      if (error.code === 'INTERNAL_SERVER_ERROR') options.onInternalError(error, 'fleet.events');
      return sendRestError(res, refusal(cause));
    }
    if (gone.signal.aborted) return;

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    res.write(': connected\n\n');
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), options.keepAliveMs);
    keepAlive.unref();
    try {
      for await (const item of events) {
        if (gone.signal.aborted) break;
        const event = (isTrackedEnvelope(item) ? item[1] : item) as FleetEventView;
        if (!res.write(frame(event))) {
          await Promise.race([once(res, 'drain'), once(res, 'close')]);
        }
      }
    } catch (cause) {
      if (!gone.signal.aborted) {
        const error = asTrpcError(cause);
        if (error.code === 'INTERNAL_SERVER_ERROR') options.onInternalError(error, 'fleet.events');
        res.write(`event: error\ndata: ${JSON.stringify({ error: refusal(cause).toShape() })}\n\n`);
      }
    } finally {
      clearInterval(keepAlive);
      res.end();
    }
  };
}
