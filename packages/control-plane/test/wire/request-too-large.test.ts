/**
 * A tRPC request whose body is over TETHER_MAX_BODY_BYTES gets 413 with the error the formatter
 * shapes (the registry's JSON-RPC code, the procedure's path, the typed error), whether the host
 * refuses it by its declared length before tRPC runs or tRPC refuses what arrives (chunked).
 */
import { request } from 'node:http';
import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { startTestServer } from '../server.js';

interface Answer {
  status: number;
  body: unknown;
}

/** POSTs `size` bytes to /trpc/<path>, with a Content-Length or chunked. */
function post(
  url: string,
  token: string,
  path: string,
  size: number,
  chunked: boolean,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/trpc/${path}`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${token}`,
          ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(size) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
          }),
        );
      },
    );
    // The server may close before all of it is sent: the answer is what counts.
    req.on('error', reject);
    const body = `{"json":{"name":"${'x'.repeat(size - 20)}"}}`.slice(0, size);
    req.end(body);
  });
}

describe('request body over the limit (tRPC)', () => {
  it('413 with the formatted typed error, by declared length and by what arrives', async () => {
    await using server = await startTestServer({ env: { TETHER_MAX_BODY_BYTES: '4096' } });
    for (const chunked of [true, false]) {
      const answer = await post(server.url, server.adminToken, 'session.create', 10_000, chunked);
      expect({ chunked, status: answer.status }).toEqual({ chunked, status: 413 });
      const error = superjson.deserialize((answer.body as { error: never }).error);
      expect(error).toEqual({
        message: 'The request body exceeds the size limit.',
        code: TRPC_ERROR_CODES_BY_KEY.PAYLOAD_TOO_LARGE,
        data: {
          code: 'PAYLOAD_TOO_LARGE',
          httpStatus: 413,
          path: 'session.create',
          tetherError: {
            code: 'request.too_large',
            message: 'The request body exceeds the size limit.',
          },
        },
      });
    }
  });
});
