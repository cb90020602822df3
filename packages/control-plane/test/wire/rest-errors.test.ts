/**
 * The REST-only refusals: bad JSON, wrong content type, wrong method, unknown paths,
 * query-string typing, size limits. (Every registry code over REST, with the same status as
 * over tRPC: test/wire/error-codes.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { errorCode, mutate } from '../http.js';
import { rest } from '../rest.js';
import { startTestServer } from '../server.js';
import { expectRestError } from './error-cases.js';

describe('REST request handling', () => {
  it('validation errors name the field paths; rate limits say when to retry', async () => {
    await using server = await startTestServer({ env: { TETHER_RATE_PUBLIC_PER_MINUTE: '1' } });
    const invalid = await rest(
      server.url,
      'POST',
      '/sessions',
      { name: 7, extra: true },
      { token: server.adminToken },
    );
    expectRestError(invalid, 'request.invalid');
    const issues = invalid.error!.details!.issues as { path: string; fields?: string[] }[];
    expect(issues.map((i) => i.path)).toContain('name');
    expect(issues.flatMap((i) => i.fields ?? [])).toContain('extra');

    await rest(server.url, 'POST', '/pairing/requests', { name: 'a', nodeType: 'desktop' });
    const limited = await rest(server.url, 'POST', '/pairing/requests', {
      name: 'b',
      nodeType: 'desktop',
    });
    expectRestError(limited, 'rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.error!.details!.retryAfterMs).toEqual(expect.any(Number));
  });

  it('query strings are typed by the schema: numbers and repeated keys, bad text refused', async () => {
    await using server = await startTestServer();
    const token = server.adminToken;
    for (let i = 0; i < 3; i++) {
      await rest(server.url, 'POST', '/sessions', { name: `s${i}` }, { token });
    }
    const page = await rest<{ items: unknown[]; nextCursor: string | null }>(
      server.url,
      'GET',
      '/sessions',
      undefined,
      { token, query: { limit: 2 } },
    );
    expect(page.status).toBe(200);
    expect(page.body.items).toHaveLength(2);
    const next = await rest<{ items: unknown[]; nextCursor: string | null }>(
      server.url,
      'GET',
      '/sessions',
      undefined,
      { token, query: { limit: 2, cursor: page.body.nextCursor! } },
    );
    expect(next.body.items).toHaveLength(1);
    for (const query of [{ limit: 'two' }, { limit: '' }, { limit: ['1', '2'] }, { bogus: 'x' }]) {
      const bad = await rest(server.url, 'GET', '/sessions', undefined, { token, query });
      expectRestError(bad, 'request.invalid');
    }
  });

  it('bodies are JSON: wrong content type, wrong method and unknown paths get typed errors', async () => {
    await using server = await startTestServer();
    const token = server.adminToken;
    const form = await rest(server.url, 'POST', '/sessions', undefined, {
      token,
      rawBody: 'name=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectRestError(form, 'request.invalid');
    const charset = await rest(server.url, 'POST', '/sessions', undefined, {
      token,
      rawBody: JSON.stringify({ name: 'utf8' }),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(charset.status).toBe(200);
    const array = await rest(server.url, 'POST', '/sessions', [1], { token });
    expectRestError(array, 'request.invalid');
    const wrongMethod = await rest(server.url, 'DELETE', '/sessions', undefined, { token });
    expectRestError(wrongMethod, 'request.invalid');
    expect(wrongMethod.headers.get('allow')).toBe('POST, GET');
    expectRestError(
      await rest(server.url, 'GET', '/nope', undefined, { token }),
      'request.unknown_procedure',
    );
    expectRestError(
      await rest(server.url, 'GET', '', undefined, { token }),
      'request.unknown_procedure',
    );
    const badEscape = await rest(server.url, 'GET', '/nodes/%E0%A4%A', undefined, { token });
    expectRestError(badEscape, 'request.invalid');
    // Path parameters are decoded, and win over a body field of the same name.
    const escaped = await rest(
      server.url,
      'GET',
      `/nodes/${encodeURIComponent('a:b')}`,
      undefined,
      {
        token,
      },
    );
    expectRestError(escaped, 'node.not_found');
    expect(escaped.error!.message).not.toContain('%3A');
    // The server keeps serving.
    expect((await rest(server.url, 'GET', '/system/info')).status).toBe(200);
  });

  it('an oversized body is refused by its declared length and by what arrives', async () => {
    await using server = await startTestServer({ env: { TETHER_MAX_BODY_BYTES: '4096' } });
    const big = JSON.stringify({ name: 'x'.repeat(8_000) });
    const declared = await rest(server.url, 'POST', '/sessions', undefined, {
      token: server.adminToken,
      rawBody: big,
    });
    expectRestError(declared, 'request.too_large');
    // Chunked (no content-length): counted while reading.
    const chunked = await fetch(`${server.url}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminToken}` },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(big));
          controller.close();
        },
      }),
      duplex: 'half',
    });
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { error: { code: string } }).error.code).toBe(
      'request.too_large',
    );
  });

  it('a REST call never loosens the tRPC wire (contract schemas are not coerced in place)', async () => {
    await using server = await startTestServer();
    const token = server.adminToken;
    // REST traffic over every kind of input first: query strings with numbers, bodies with
    // booleans and numbers.
    expect(
      (await rest(server.url, 'GET', '/nodes', undefined, { token, query: { limit: 5 } })).status,
    ).toBe(200);
    const key = await rest(
      server.url,
      'POST',
      '/enrollment-keys',
      { reusable: true, expiresInSeconds: 600 },
      { token },
    );
    expect(key.status).toBe(200);
    // Text where the contract wants a boolean or a number stays an error, over tRPC…
    const trpc = await mutate(server.url, 'enrollment.createKey', { reusable: 'false' }, { token });
    expect(errorCode(trpc)).toBe('request.invalid');
    const trpcNumber = await mutate(
      server.url,
      'enrollment.createKey',
      { expiresInSeconds: '600' },
      { token },
    );
    expect(errorCode(trpcNumber)).toBe('request.invalid');
    // …and in REST bodies (JSON has types; only query strings are text).
    const restBody = await rest(
      server.url,
      'POST',
      '/enrollment-keys',
      { reusable: 'false' },
      { token },
    );
    expectRestError(restBody, 'request.invalid');
  });
});
