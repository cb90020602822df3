/**
 * HTTP heartbeats skip tRPC's fetch emulation (src/server/http-heartbeat.ts), and a beat certain
 * to pass the procedure's checks skips its middleware chain too (heartbeat-fast-path.ts), but
 * they must answer exactly as tRPC's adapter does. The adapter still serves batched calls, so
 * the same beat sent plain and batched is the comparison.
 */
import { request } from 'node:http';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { metricSample, mutate, type CallResult } from '../http.js';
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

async function post(
  server: TestServer,
  path: string,
  body: string,
  token: string,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
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
  headers: Record<string, string> = {},
): Promise<{ plain: Answer; batched: Answer }> {
  const plain = await post(server, '/trpc/runtimenode.heartbeat', body, token, headers);
  const batched = await post(
    server,
    '/trpc/runtimenode.heartbeat?batch=1',
    `{"0":${body}}`,
    token,
    headers,
  );
  return { plain, batched: { status: batched.status, body: (batched.body as unknown[])[0] } };
}

const metric = (server: TestServer, series: string): Promise<number> =>
  metricSample(server.url, series);

const FAST = 'tether_http_heartbeat_fast_path_total';

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
    // The plain one took the fast path; the batch went through the adapter and the procedure.
    expect(await metric(server, FAST)).toBe(1);
  });

  it('every refusal is the same status and body as through the tRPC adapter', async () => {
    await using server = await startTestServer();
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const other = await nodeOf(server, owner);
    const cases: {
      body: string;
      token: string;
      status: number;
      code: string;
      headers?: Record<string, string>;
    }[] = [
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
      {
        // A valid beat from a client that announces a contract MAJOR this server does not serve.
        body: superjson.stringify({ nodeId: node.nodeId, healthState: 'online' }),
        token: node.token,
        status: 409,
        code: 'version.ceiling_exceeded',
        headers: { 'x-tether-client-version': '99.0' },
      },
    ];
    for (const c of cases) {
      const { plain, batched } = await bothWays(server, c.body, c.token, c.headers);
      expect(plain.status, c.code).toBe(c.status);
      expect(plain.body, c.code).toMatchObject({
        error: { data: { tetherError: { code: c.code } } },
      });
      expect(batched.body, c.code).toEqual(plain.body);
    }
    // Every refusal came from the procedure: the fast path admitted none of them.
    expect(await metric(server, FAST)).toBe(0);
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

  it('the per-node rate limit applies on the fast path: beats beyond the burst are refused with rate_limited', async () => {
    // 1 per minute refills nothing during the test: the burst (10) is all there is.
    await using server = await startTestServer({
      env: { TETHER_RATE_HEARTBEATS_PER_MINUTE: '1' },
    });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const input = { nodeId: node.nodeId, healthState: 'online' };
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        mutate(server.url, 'runtimenode.heartbeat', input, { token: node.token }),
      ),
    );
    const codes = answers.map((a) => a.error?.data.tetherError.code ?? a.status);
    expect(codes.filter((c) => c === 200)).toHaveLength(10);
    expect(codes.filter((c) => c === 'rate_limited')).toHaveLength(2);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(2);
    expect(await metric(server, FAST)).toBe(10);
    expect(
      await metric(
        server,
        'tether_rpc_requests_total{procedure="runtimenode.heartbeat",code="rate_limited",transport="http"}',
      ),
    ).toBe(2);
  });

  it('a full heartbeat queue refuses fast-path beats with system.unavailable (503) and retryAfterMs', async () => {
    // A queue of one, and the node's presence row locked by another transaction: the batch
    // writers wait on the lock, the queue fills, and the beats beyond it are refused at once.
    await using server = await startTestServer({ env: { TETHER_HEARTBEAT_QUEUE_MAX: '1' } });
    const owner = await participant(server);
    const node = await nodeOf(server, owner);
    const input = { nodeId: node.nodeId, healthState: 'online' };
    const beat = () => mutate(server.url, 'runtimenode.heartbeat', input, { token: node.token });
    expect((await beat()).status).toBe(200);
    const answered: CallResult[] = [];
    let calls: Promise<unknown>[] = [];
    await server.db.tx(async (sql) => {
      await sql.query(`SELECT 1 FROM runtime_node_presence WHERE node_id = $1 FOR UPDATE`, [
        node.nodeId,
      ]);
      calls = Array.from({ length: 4 }, () => beat().then((answer) => answered.push(answer)));
      // Refusals do not wait for the lock; the beats the queue took do.
      await eventually(
        () => Promise.resolve(answered.length),
        (n) => n >= 1,
      );
      expect(answered.every((a) => a.status === 503)).toBe(true);
    });
    await Promise.all(calls);
    const refused = answered.filter((a) => a.status === 503);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(answered.filter((a) => a.status === 200).length).toBe(4 - refused.length);
    for (const r of refused) {
      const retryAfterMs = r.error?.data.tetherError.details?.retryAfterMs;
      expect(retryAfterMs).toBeGreaterThanOrEqual(500);
      expect(retryAfterMs).toBeLessThanOrEqual(1_500);
      expect(r.error?.data.tetherError).toEqual({
        code: 'system.unavailable',
        message: 'Heartbeats are queued beyond capacity; retry.',
        details: { retryAfterMs },
      });
    }
    expect(await metric(server, FAST)).toBe(5);
    // The server keeps serving: the next beat is written.
    expect((await beat()).status).toBe(200);
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
