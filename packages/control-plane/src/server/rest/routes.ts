/**
 * The REST route table, read once from the procedures' `meta.openapi` (the same metadata the
 * OpenAPI document is generated from, with trpc-to-openapi's own path rules): method + path
 * under `/api/v1` → procedure, and how each query-string field is typed.
 *
 * Query strings carry only text; a field whose schema wants a number or a boolean gets one when
 * the text is exactly that (`limit=20`, `reusable=true`), anything else is left as text so the
 * procedure's own validation reports it. This happens per request, on the input value: the
 * shared contract schemas are never changed (trpc-to-openapi's handler switches `coerce` on in
 * the schemas themselves, which would loosen the tRPC wire too; see docs/architecture.md).
 */
import {
  forEachOpenApiProcedure,
  getInputOutputParsers,
  getPathParameters,
  getPathRegExp,
  normalizePath,
  unwrapZodType,
  type OpenApiMethod,
  type OpenApiRouter,
} from 'trpc-to-openapi';
import type { z } from 'zod';

type Scalar = 'string' | 'number' | 'boolean';

export interface FieldKind {
  array: boolean;
  scalar: Scalar;
}

export interface RestRoute {
  method: OpenApiMethod;
  /** As declared, relative to `/api/v1` (e.g. `/sessions/{sessionId}`). */
  path: string;
  /** The tRPC procedure it calls (e.g. `session.get`). */
  procedure: string;
  type: 'query' | 'mutation';
  pathParams: string[];
  pattern: RegExp;
  /** Input fields by name (query-string typing). */
  fields: Map<string, FieldKind>;
  /** The procedure's input and output schemas (document generation). */
  input: z.ZodType;
  output: z.ZodType;
}

export interface RouteMatch {
  route: RestRoute;
  /** Path parameters, percent-decoded. */
  params: Record<string, string>;
}

interface DefLike {
  type: string;
  innerType?: z.ZodType;
  element?: z.ZodType;
}

function defOf(schema: z.ZodType): DefLike {
  return (schema as unknown as { _zod: { def: DefLike } })._zod.def;
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly']);

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (let def = defOf(current); WRAPPERS.has(def.type) && def.innerType; def = defOf(current)) {
    current = def.innerType;
  }
  return current;
}

function fieldKind(schema: z.ZodType): FieldKind {
  let inner = unwrap(schema);
  let array = false;
  const def = defOf(inner);
  if (def.type === 'array' && def.element) {
    array = true;
    inner = unwrap(def.element);
  }
  const type = defOf(inner).type;
  return { array, scalar: type === 'number' || type === 'boolean' ? type : 'string' };
}

function inputFields(input: z.ZodType): Map<string, FieldKind> {
  const fields = new Map<string, FieldKind>();
  const object = unwrapZodType(input, true) as unknown as {
    shape?: Record<string, z.ZodType>;
  };
  for (const [name, schema] of Object.entries(object.shape ?? {})) {
    fields.set(name, fieldKind(schema));
  }
  return fields;
}

export class RestRoutes {
  readonly all: RestRoute[] = [];
  /** Routes without path parameters, by `METHOD /path` (lower-cased path). */
  readonly #exact = new Map<string, RestRoute>();
  /** Routes with path parameters, fewest parameters first (literal segments win). */
  readonly #patterns: RestRoute[] = [];

  constructor(router: OpenApiRouter) {
    forEachOpenApiProcedure(router._def.procedures, ({ path, type, procedure, meta }) => {
      if (type === 'subscription') return;
      const { inputParser, outputParser } = getInputOutputParsers(procedure);
      const declared = normalizePath(meta.openapi.path);
      const route: RestRoute = {
        method: meta.openapi.method,
        path: declared,
        procedure: path,
        type,
        pathParams: getPathParameters(declared),
        pattern: getPathRegExp(declared),
        fields: inputFields(inputParser),
        input: inputParser,
        output: outputParser as z.ZodType,
      };
      this.all.push(route);
      if (route.pathParams.length === 0) {
        this.#exact.set(`${route.method} ${declared.toLowerCase()}`, route);
      } else {
        this.#patterns.push(route);
      }
    });
    this.#patterns.sort((a, b) => a.pathParams.length - b.pathParams.length);
  }

  /** The route for this method and path (relative to `/api/v1`), or null. */
  match(method: string, path: string): RouteMatch | null {
    const normalized = normalizePath(path);
    const exact = this.#exact.get(`${method} ${normalized.toLowerCase()}`);
    if (exact) return { route: exact, params: {} };
    for (const route of this.#patterns) {
      if (route.method !== method) continue;
      const groups = route.pattern.exec(normalized)?.groups;
      if (!groups) continue;
      const params: Record<string, string> = {};
      for (const [name, raw] of Object.entries(groups)) params[name] = decodeURIComponent(raw);
      return { route, params };
    }
    return null;
  }

  /** The methods some route accepts at this path (for a 400 on a wrong method). */
  methodsAt(path: string): OpenApiMethod[] {
    const normalized = normalizePath(path);
    return this.all
      .filter((r) => r.pattern.test(normalized))
      .map((r) => r.method)
      .filter((m, i, all) => all.indexOf(m) === i);
  }
}

const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

function typed(value: string, scalar: Scalar): unknown {
  if (scalar === 'number' && NUMBER.test(value)) return Number(value);
  if (scalar === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

/**
 * A GET/DELETE input from the query string: each known field typed as its schema wants, array
 * fields from repeated keys (`types=a&types=b`); unknown keys pass through as text so the
 * strict input schema names them.
 */
export function queryInput(route: RestRoute, search: URLSearchParams): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const name of new Set(search.keys())) {
    const values = search.getAll(name);
    const kind = route.fields.get(name);
    if (kind?.array) input[name] = values.map((v) => typed(v, kind.scalar));
    else if (values.length > 1) input[name] = values;
    else input[name] = typed(values[0]!, kind?.scalar ?? 'string');
  }
  return input;
}
