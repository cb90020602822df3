/**
 * A plain HTTP client for tRPC, as any HTTP client would call it: queries are
 * `GET /trpc/<path>?input=<superjson>`, mutations `POST /trpc/<path>` with a superjson body
 * (`{ "json": …, "meta"?: … }`); results and errors come back superjson-encoded and are decoded
 * here, so `data` holds `Date`s where the contract says Timestamp.
 */
import superjson from 'superjson';

export interface CallResult<T = unknown> {
  status: number;
  /** `result.data` on success. */
  data: T;
  /** The `error` object on failure. */
  error:
    | {
        message: string;
        code: number;
        data: {
          httpStatus: number;
          tetherError: { code: string; message: string; details?: Record<string, unknown> };
        };
      }
    | undefined;
  raw: string;
}

export interface CallOptions {
  token?: string | undefined;
  headers?: Record<string, string>;
  /** Send this string as the body verbatim (malformed-JSON tests). */
  rawBody?: string;
}

async function send<T>(url: string, init: RequestInit): Promise<CallResult<T>> {
  const response = await fetch(url, init);
  const raw = await response.text();
  let parsed: { result?: { data: unknown }; error?: unknown } = {};
  try {
    parsed = JSON.parse(raw) as typeof parsed;
  } catch {
    // leave parsed empty: callers assert on status/raw
  }
  return {
    status: response.status,
    data: decode(parsed.result?.data) as T,
    error: decode(parsed.error) as CallResult['error'],
    raw,
  };
}

/** A superjson-encoded value (`{ json, meta? }`) decoded; anything else as it is. */
function decode(value: unknown): unknown {
  if (typeof value === 'object' && value !== null && 'json' in value) {
    return superjson.deserialize(value as Parameters<typeof superjson.deserialize>[0]);
  }
  return value;
}

function headers(options: CallOptions, json: boolean): Record<string, string> {
  return {
    ...(json ? { 'content-type': 'application/json' } : {}),
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    ...options.headers,
  };
}

export function query<T = unknown>(
  baseUrl: string,
  path: string,
  input?: unknown,
  options: CallOptions = {},
) {
  const qs = input === undefined ? '' : `?input=${encodeURIComponent(superjson.stringify(input))}`;
  return send<T>(`${baseUrl}/trpc/${path}${qs}`, {
    method: 'GET',
    headers: headers(options, false),
  });
}

export function mutate<T = unknown>(
  baseUrl: string,
  path: string,
  input?: unknown,
  options: CallOptions = {},
) {
  const body = options.rawBody ?? (input === undefined ? undefined : superjson.stringify(input));
  return send<T>(`${baseUrl}/trpc/${path}`, {
    method: 'POST',
    headers: headers(options, true),
    ...(body === undefined ? {} : { body }),
  });
}

/**
 * Several mutations in one HTTP request, as tRPC's httpBatchLink sends them
 * (`POST /trpc/a,b,c?batch=1`, the superjson-encoded inputs keyed by position). `items` holds
 * one decoded result per call when the server answered them one by one; a batch refused as a
 * whole has `error` set instead.
 */
export async function mutateBatch(
  baseUrl: string,
  calls: { path: string; input?: unknown }[],
  options: CallOptions = {},
): Promise<CallResult<undefined> & { items: CallResult[] }> {
  const inputs = Object.fromEntries(calls.map((call, i) => [i, superjson.serialize(call.input)]));
  const response = await fetch(`${baseUrl}/trpc/${calls.map((c) => c.path).join(',')}?batch=1`, {
    method: 'POST',
    headers: headers(options, true),
    body: JSON.stringify(inputs),
  });
  const raw = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  type Item = { result?: { data: unknown }; error?: unknown };
  const items = Array.isArray(parsed)
    ? (parsed as Item[]).map((item) => {
        const error = decode(item.error) as CallResult['error'];
        return {
          status: error?.data.httpStatus ?? 200,
          data: decode(item.result?.data),
          error,
          raw: JSON.stringify(item),
        };
      })
    : [];
  const whole = Array.isArray(parsed)
    ? undefined
    : (decode((parsed as Item | undefined)?.error) as CallResult['error']);
  return { status: response.status, data: undefined, error: whole, raw, items };
}

/** The Tether error code of a failed call (undefined on success). */
export function errorCode(result: CallResult): string | undefined {
  return result.error?.data.tetherError.code;
}

/** One sample of the server's /metrics, by its exact series text (name and labels as printed); 0 if absent. */
export async function metricSample(baseUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
