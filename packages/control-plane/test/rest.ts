/**
 * A plain REST client for `/api/v1`, as curl or a daemon in any language would call it: JSON
 * bodies, query strings, `Authorization: Bearer`. Also a raw Server-Sent Events reader that
 * keeps every line it received (so tests can assert the exact framing).
 */
export interface RestError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface RestResult<T = unknown> {
  status: number;
  /** The parsed JSON body (the output itself on success). */
  body: T;
  /** `body.error` on failure. */
  error: RestError | undefined;
  headers: Headers;
  raw: string;
}

export interface RestOptions {
  token?: string | undefined;
  headers?: Record<string, string>;
  /** Query parameters (repeated keys: pass an array). */
  query?: Record<string, string | number | boolean | string[]>;
  /** Send this string as the body verbatim. */
  rawBody?: string;
}

export async function rest<T = unknown>(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  options: RestOptions = {},
): Promise<RestResult<T>> {
  const url = new URL(`${baseUrl}/api/v1${path}`);
  for (const [key, value] of Object.entries(options.query ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(v));
  }
  const payload = options.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
  const response = await fetch(url, {
    method,
    headers: {
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    ...(payload === undefined ? {} : { body: payload }),
  });
  const raw = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  const error =
    response.status >= 400 ? (parsed as { error?: RestError } | undefined)?.error : undefined;
  return { status: response.status, body: parsed as T, error, headers: response.headers, raw };
}

export interface SseFrame {
  event: string | undefined;
  id: string | undefined;
  data: string | undefined;
  /** The frame's lines as received. */
  lines: string[];
}

export interface SseStream {
  status: number;
  headers: Headers;
  /** Event frames (comment-only blocks excluded), in arrival order. */
  frames: SseFrame[];
  /** Comment lines (without the leading colon), in arrival order. */
  comments: string[];
  /** Every byte received so far, decoded. */
  raw(): string;
  /** Resolves once `predicate` holds (checked on every arrival). */
  until(predicate: (s: SseStream) => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens `GET /api/v1/events` and reads it as it arrives. The body of a refusal is in `raw()`. */
export async function openEvents(baseUrl: string, options: RestOptions = {}): Promise<SseStream> {
  const url = new URL(`${baseUrl}/api/v1/events`);
  for (const [key, value] of Object.entries(options.query ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(v));
  }
  const abort = new AbortController();
  const response = await fetch(url, {
    headers: {
      accept: 'text/event-stream',
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    signal: abort.signal,
  });
  let text = '';
  let pending = '';
  const waiters = new Set<() => void>();
  const stream: SseStream = {
    status: response.status,
    headers: response.headers,
    frames: [],
    comments: [],
    raw: () => text,
    until: (predicate, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!predicate(stream)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`SSE condition not reached in ${timeoutMs} ms; received:\n${text}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    ended: Promise.resolve(),
    close: () => abort.abort(),
  };
  const decoder = new TextDecoder();
  const reader = response.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
  stream.ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        const chunk = decoder.decode(value, { stream: true });
        text += chunk;
        pending += chunk;
        let cut: number;
        while ((cut = pending.indexOf('\n\n')) >= 0) {
          const lines = pending.slice(0, cut).split('\n');
          pending = pending.slice(cut + 2);
          const field = (name: string): string | undefined =>
            lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
          for (const l of lines) if (l.startsWith(':')) stream.comments.push(l.slice(1).trim());
          if (lines.some((l) => !l.startsWith(':'))) {
            stream.frames.push({
              event: field('event'),
              id: field('id'),
              data: field('data'),
              lines,
            });
          }
        }
        for (const wake of [...waiters]) wake();
      }
    } catch {
      // aborted by close()
    } finally {
      for (const wake of [...waiters]) wake();
    }
  })();
  return stream;
}
