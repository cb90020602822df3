/**
 * The REST surface describes itself: `/api/v1/openapi.json` is a valid OpenAPI 3.1 document
 * generated from the procedures (every query and mutation, the SSE stream, bearer auth, the
 * contract version, date-time strings, the one error body), and `/api/docs` renders it with
 * assets served by this server only.
 */
import { validate, compileErrors } from '@readme/openapi-parser';
import { CONTRACT_VERSION, TETHER_ERROR_CODES, WIRE_PROCEDURES } from '@tether/contracts';
import { describe, expect, it } from 'vitest';
import { appRouter } from '../../src/trpc/root.js';
import { startTestServer } from '../server.js';

type Json = Record<string, unknown>;

/** `dig(doc, 'paths', '/x', 'get')`: the value at that path of a parsed JSON document. */
function dig(value: unknown, ...keys: string[]): Json {
  let current = value;
  for (const key of keys) {
    if (typeof current !== 'object' || current === null) throw new Error(`no ${keys.join(' > ')}`);
    current = (current as Json)[key];
  }
  if (typeof current !== 'object' || current === null) throw new Error(`no ${keys.join(' > ')}`);
  return current as Json;
}

function okSchema(doc: Json, path: string, method: string): Json {
  return dig(
    doc,
    'paths',
    path,
    method,
    'responses',
    '200',
    'content',
    'application/json',
    'schema',
  );
}

async function openApi(url: string): Promise<{ status: number; type: string | null; doc: Json }> {
  const response = await fetch(`${url}/api/v1/openapi.json`);
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    doc: (await response.json()) as Json,
  };
}

function operations(doc: Json): { method: string; path: string; op: Json }[] {
  return Object.entries(dig(doc, 'paths')).flatMap(([path, item]) =>
    Object.entries(item as Json).map(([method, op]) => ({ method, path, op: op as Json })),
  );
}

describe('REST: the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document with bearer auth, a relative server and the contract version', async () => {
    await using server = await startTestServer();
    const { status, type, doc } = await openApi(server.url);
    expect(status).toBe(200);
    expect(type).toMatch(/^application\/json/);
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(dig(doc, 'info').version).toBe(CONTRACT_VERSION);
    expect(doc.servers).toEqual([{ url: '/api/v1' }]);
    expect(dig(doc, 'components', 'securitySchemes', 'bearerAuth')).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
  });

  it('has one operation per query and mutation, and GET /events for the subscription', async () => {
    await using server = await startTestServer();
    const { doc } = await openApi(server.url);
    const byId = new Map(operations(doc).map((o) => [o.op.operationId as string, o]));
    for (const [procedure, spec] of Object.entries(WIRE_PROCEDURES)) {
      if (spec.kind === 'subscription') continue;
      const found = byId.get(procedure.replace(/\./g, '-'));
      expect(found, `${procedure} has no REST operation`).toBeDefined();
      // Queries are GETs, except fleet.list: its structured filter travels in a POST body.
      if (spec.kind === 'query' && procedure !== 'fleet.list') expect(found!.method).toBe('get');
      if (spec.kind === 'mutation') expect(found!.method).not.toBe('get');
    }
    // Every REST operation is a procedure of the router (nothing invented beside the stream).
    const procedures = Object.keys(appRouter._def.procedures);
    for (const { op } of operations(doc)) {
      if (op.operationId === 'fleet-events') continue;
      expect(procedures).toContain((op.operationId as string).replace(/-/g, '.'));
    }
    const stream = dig(doc, 'paths', '/events', 'get');
    expect(Object.keys(dig(stream, 'responses', '200', 'content'))).toEqual(['text/event-stream']);
    const parameters = stream.parameters as Json[];
    expect(parameters.map((p) => `${String(p.in)}:${String(p.name)}`)).toEqual(
      expect.arrayContaining(['header:Last-Event-ID', 'query:lastEventId', 'query:types']),
    );
    // Public operations carry no security requirement; the others the bearer scheme.
    expect(dig(doc, 'paths', '/system/info', 'get').security).toBeUndefined();
    expect(dig(doc, 'paths', '/device/enroll', 'post').security).toBeUndefined();
    expect(dig(doc, 'paths', '/sessions', 'post').security).toEqual([{ bearerAuth: [] }]);
  });

  it('describes times as date-time strings and event ids as decimal strings', async () => {
    await using server = await startTestServer();
    const { doc } = await openApi(server.url);
    const session = okSchema(doc, '/sessions/{sessionId}', 'get');
    expect(dig(session, 'properties', 'createdAt')).toMatchObject({
      type: 'string',
      format: 'date-time',
    });
    const node = okSchema(doc, '/nodes/{nodeId}', 'get');
    const lastBeat = dig(node, 'properties', 'presence', 'properties', 'lastHeartbeatAt');
    const variants = [lastBeat, ...((lastBeat.anyOf as Json[] | undefined) ?? [])];
    expect(variants.flatMap((v) => v.type ?? [])).toEqual(
      expect.arrayContaining(['string', 'null']),
    );
    expect(JSON.stringify(lastBeat)).toContain('"format":"date-time"');
    const eventId = dig(okSchema(doc, '/events/query', 'post'), 'properties', 'lastEventId');
    expect(eventId.type).toBe('string');
    expect(new RegExp(String(eventId.pattern)).test('12345')).toBe(true);
    expect(new RegExp(String(eventId.pattern)).test('12a')).toBe(false);
  });

  it('describes every error as the one REST error body, with the registry codes', async () => {
    await using server = await startTestServer();
    const { doc } = await openApi(server.url);
    const error = dig(doc, 'components', 'schemas', 'Error', 'properties', 'error');
    expect(dig(error, 'properties', 'code').enum).toEqual([...TETHER_ERROR_CODES]);
    expect(error.required).toEqual(['code', 'message']);
    for (const { path, method, op } of operations(doc)) {
      for (const [status, response] of Object.entries(dig(op, 'responses'))) {
        if (status.startsWith('2')) continue;
        const ref = (response as Json).$ref;
        const resolved =
          typeof ref === 'string'
            ? dig(doc, 'components', 'responses', ref.split('/').pop()!)
            : (response as Json);
        expect(
          dig(resolved, 'content', 'application/json', 'schema'),
          `${method} ${path} ${status}`,
        ).toEqual({
          $ref: '#/components/schemas/Error',
        });
      }
    }
    // trpc-to-openapi's own error schemas (a body this server never sends) are gone.
    const schemas = Object.keys(dig(doc, 'components', 'schemas'));
    expect(schemas.filter((n) => n.startsWith('error.'))).toEqual([]);
  });
});

describe('REST: the reference page /api/docs', () => {
  it('is HTML that loads only local assets, each served with its content type', async () => {
    await using server = await startTestServer();
    const page = await fetch(`${server.url}/api/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toMatch(/https?:/);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThanOrEqual(4);
    const expected: Record<string, RegExp> = {
      '.css': /^text\/css/,
      '.js': /^text\/javascript/,
      '.png': /^image\/png$/,
    };
    for (const ref of refs) {
      expect(ref.startsWith('/'), ref).toBe(true);
      const asset = await fetch(`${server.url}${ref}`);
      const body = Buffer.from(await asset.arrayBuffer());
      expect(asset.status, ref).toBe(200);
      expect(body.length, ref).toBeGreaterThan(0);
      const ext = ref.slice(ref.lastIndexOf('.'));
      expect(asset.headers.get('content-type'), ref).toMatch(expected[ext]!);
    }
    // The page's script points Swagger UI at this server's document, with no remote validator.
    const init = refs.find((r) => r.endsWith('/init.js'))!;
    const script = await (await fetch(`${server.url}${init}`)).text();
    expect(script).toContain("url: '/api/v1/openapi.json'");
    expect(script).toContain('validatorUrl: null');
    // Versioned assets are cacheable for good; a name outside the package's list is not served.
    const css = refs.find((r) => r.endsWith('.css'))!;
    expect((await fetch(`${server.url}${css}`)).headers.get('cache-control')).toContain(
      'immutable',
    );
    const other = await fetch(`${server.url}${css.replace('swagger-ui.css', 'package.json')}`);
    expect(other.status).toBe(404);
  });
});
