/**
 * HTTP heartbeats skip tRPC's fetch emulation (src/server/http-heartbeat.ts) but must answer
 * exactly as tRPC's adapter does. The adapter still serves batched calls, so the same beat sent
 * plain and batched is the comparison.
 */
import { request } from 'node:http';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { metricSample } from '../http.js';
import { startTestServer, type TestServer } from '../server.js';
import { nodeOf, participant } from './actors.js';

interface Answer {
  status: number;
  body: unknown;
}

type Encoded = Parameters<typeof superjson.deserialize>[0];

/** One response item with its superjson payload (result data or error shape) decoded. */
function decodeItem(item: unknown): unknown {
  const { result, error } = item as { result?: { data: Encoded }; error?: Encoded };
  if (result) return { ...(item as object), result: { data: superjson.deserialize(result.data) } };
  if (error) return { ...(item as object), error: superjson.deserialize(error) };
  return item;
}

async function post(server: TestServer, path: string, body: string, token: string) {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body,
  });
  const json: unknown = await response.json();
  return {
    status: response.status,
    body: Array.isArray(json) ? json.map(decodeItem) : decodeItem(json),
  };
}

/** The same call through the fast path and through tRPC's adapter (a batch of one). */
async function bothWays(
  server: TestServer,
  body: string,
  token: string,
): Promise<{ plain: Answer; batched: Answer }> {
  const plain = await post(server, '/trpc/runtimenode.heartbeat', body, token);
  const batched = await post(server, '/trpc/runtimenode.heartbeat?batch=1', `{"0":${body}}`, token);
  return { plain, batched: { status: batched.status, body: (batched.body as unknown[])[0] } };
}

const metric = (server: TestServer, series: string): Promise<number> =>
  metricSample(server.url, series);

describe('HTTP heartbeats', () => {
  it('a plain POST is answered as tRPC answers it, written and counted', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const beat = superjson.stringify({ nodeId: node.nodeId, healthState: 'degraded' });
    const { plain, batched } = await bothWays(server, beat, node.token);
    expect(plain).toEqual({ status: 200, body: { result: { data: null } } });
    expect(batched).toEqual(plain);
    const { rows } = await server.db.query<{ health_state: string }>(
      `SELECT health_state FROM runtime_node_presence WHERE node_id = $1 AND last_heartbeat_at IS NOT NULL`,
      [node.nodeId],
    );
    expect(rows).toEqual([{ health_state: 'degraded' }]);
    expect(
      await metric(
        server,
        'tether_rpc_requests_total{procedure="runtimenode.heartbeat",code="ok",transport="http"}',
      ),
    ).toBe(2);
  });

  it('every refusal is the same status and body as through the tRPC adapter', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const other = await nodeOf(server, owner);
    const cases: { body: string; token: string; status: number; code: string }[] = [
      {
        body: superjson.stringify({ nodeId: other.nodeId, healthState: 'online' }),
        token: node.token,
        status: 403,
        code: 'auth.principal_mismatch',
      },
      {
        body: superjson.stringify({ nodeId: node.nodeId, healthState: 'offline' }),
        token: node.token,
        status: 400,
        code: 'request.invalid',
      },
      {
        body: superjson.stringify({ nodeId: node.nodeId, healthState: 'online' }),
        token: 'tnd_garbage',
        status: 401,
        code: 'auth.unauthenticated',
      },
      {
        body: superjson.stringify({ nodeId: node.nodeId, healthState: 'online' }),
        token: owner.token,
        status: 403,
        code: 'auth.forbidden',
      },
    ];
    for (const c of cases) {
      const { plain, batched } = await bothWays(server, c.body, c.token);
      expect(plain.status, c.code).toBe(c.status);
      expect(plain.body, c.code).toMatchObject({
        error: { data: { tetherError: { code: c.code } } },
      });
      expect(batched.body, c.code).toEqual(plain.body);
    }
    // Malformed JSON cannot be batched; the adapter answers it for other procedures.
    const malformed = await post(server, '/trpc/runtimenode.heartbeat', '{"nodeId": ', node.token);
    const adapter = await post(server, '/trpc/runtimenode.detach', '{"nodeId": ', node.token);
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({
      error: { data: { tetherError: { code: 'request.malformed' } } },
    });
    expect(
      (malformed.body as { error: { data: { tetherError: unknown } } }).error.data.tetherError,
    ).toEqual(
      (adapter.body as { error: { data: { tetherError: unknown } } }).error.data.tetherError,
    );
  });

  it('a chunked body past the size limit is refused with request.too_large (413)', async () => {
    await using server = await startTestServer({ env: { TETHER_MAX_BODY_BYTES: '1024' } });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      // No content-length: the limit has to be enforced while reading.
      const req = request(`${server.url}/trpc/runtimenode.heartbeat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${node.token}` },
      });
      let answered = false;
      req.on('response', (res) => {
        answered = true;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      // The server closes the connection after answering; a write racing that close may fail.
      req.on('error', (error) => {
        if (!answered) reject(error);
      });
      req.write(`{"json":{"nodeId":"${node.nodeId}","healthState":"online","pad":"`);
      for (let i = 0; i < 4; i++) req.write('x'.repeat(512));
      req.end('"}}');
    });
    expect(answer.status).toBe(413);
    expect(decodeItem(JSON.parse(answer.body))).toMatchObject({
      error: { data: { tetherError: { code: 'request.too_large' } } },
    });
    // The server keeps serving.
    const { plain } = await bothWays(
      server,
      superjson.stringify({ nodeId: node.nodeId, healthState: 'online' }),
      node.token,
    );
    expect(plain.status).toBe(200);
  });
});
