/**
 * Measures presence change → dashboard delivery: a real server process, subscribers on
 * `fleet.events` over WebSocket, and nodes flipping online/offline over HTTP (open loop, paced).
 * Latency per delivered event = arrival time − the event's `at` (the database clock of the
 * transaction that made the change; same machine, same clock).
 *
 *   DATABASE_URL=postgres://… tsx scripts/feed-latency.ts [--changes 2000] [--subscribers 100]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { FleetEventView } from '@tether/contracts';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import superjson from 'superjson';
import pg from 'pg';
import WebSocket from 'ws';
import type { AppRouter } from '../src/trpc/root.js';

const { values } = parseArgs({
  options: {
    changes: { type: 'string', default: '2000' },
    subscribers: { type: 'string', default: '100' },
    nodes: { type: 'string', default: '50' },
    rate: { type: 'string', default: '200' },
  },
});
const CHANGES = Number(values.changes);
const SUBSCRIBERS = Number(values.subscribers);
const NODES = Number(values.nodes);
const RATE = Number(values.rate);
const ADMIN = 'tpt_feed-latency-bootstrap-admin-token-01';

if (!process.env.DATABASE_URL) {
  console.error('DATABASE_URL is required (a scratch database: the script enrolls nodes in it).');
  process.exit(2);
}

async function call<T>(url: string, path: string, input: unknown, token?: string): Promise<T> {
  const res = await fetch(`${url}/trpc/${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(input),
  });
  const body = (await res.json()) as { result?: { data: T }; error?: unknown };
  if (!res.ok || !body.result) throw new Error(`${path}: ${JSON.stringify(body.error)}`);
  return body.result.data;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/cli.ts', 'serve'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: {
      ...process.env,
      TETHER_PORT: '0',
      TETHER_HOST: '127.0.0.1',
      TETHER_LOG_LEVEL: 'info',
      TETHER_BOOTSTRAP_TOKEN: ADMIN,
      TETHER_RATE_PUBLIC_PER_MINUTE: '100000',
      TETHER_RATE_HEARTBEATS_PER_MINUTE: '100000',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  try {
    const key = await call<{ enrollmentKey: string }>(
      url,
      'enrollment.createKey',
      { reusable: true },
      ADMIN,
    );
    const run = Date.now().toString(36);
    const nodes = [];
    for (let i = 0; i < NODES; i++) {
      const n = await call<{ nodeId: string; nodeToken: string }>(url, 'device.enroll', {
        enrollmentKey: key.enrollmentKey,
        nodeId: `lat-${run}-${i}`,
        name: `latency ${i}`,
        nodeType: 'bench',
      });
      nodes.push({ nodeId: n.nodeId, token: n.nodeToken, online: false });
    }
    const ours = new Set(nodes.map((n) => n.nodeId));

    const latencies: number[] = [];
    let delivered = 0;
    const errors: string[] = [];
    const sockets = [];
    let ready = 0;
    for (let s = 0; s < SUBSCRIBERS; s++) {
      const ws = createWSClient({
        url: `${url.replace(/^http/, 'ws')}/trpc`,
        WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
        connectionParams: { token: ADMIN },
        onOpen: () => ready++,
      });
      sockets.push(ws);
      const client = createTRPCClient<AppRouter>({
        links: [wsLink({ client: ws, transformer: superjson })],
      });
      client.fleet.events.subscribe(
        { filter: { types: ['presence.changed'] } },
        {
          onData: ({ data }: { data: FleetEventView }) => {
            if (data.nodeId === null || !ours.has(data.nodeId)) return;
            latencies.push(Date.now() - data.at.getTime());
            delivered++;
          },
          onError: (error: unknown) => errors.push(String(error)),
        },
      );
    }
    while (ready < SUBSCRIBERS) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 500));

    // Open loop: one change every 1000/RATE ms, whatever the previous one is doing.
    const interval = 1000 / RATE;
    const started = performance.now();
    const inflight: Promise<unknown>[] = [];
    const callMs: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const due = started + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const node = nodes[i % nodes.length]!;
      node.online = !node.online;
      const sent = performance.now();
      const write = node.online
        ? call(
            url,
            'runtimenode.heartbeat',
            { nodeId: node.nodeId, healthState: 'online' },
            node.token,
          )
        : call(url, 'runtimenode.detach', { nodeId: node.nodeId }, node.token);
      inflight.push(write.then(() => callMs.push(performance.now() - sent)));
    }
    await Promise.all(inflight);
    // Under load a node's detach can overtake its heartbeat (both in flight): count the
    // transitions that really happened, each to be delivered to every subscriber.
    const counter = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await counter.connect();
    const { rows } = await counter.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM fleet_events
        WHERE type = 'presence.changed' AND node_id = ANY($1)`,
      [[...ours]],
    );
    await counter.end();
    const transitions = rows[0]!.n;
    const expected = transitions * SUBSCRIBERS;
    const deadline = Date.now() + 30_000;
    while (delivered < expected && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    latencies.sort((a, b) => a - b);
    callMs.sort((a, b) => a - b);
    console.log(
      JSON.stringify(
        {
          changes: CHANGES,
          transitions,
          subscribers: SUBSCRIBERS,
          offeredChangesPerSecond: RATE,
          deliveries: delivered,
          expectedDeliveries: expected,
          subscriptionErrors: errors.slice(0, 3),
          writeCallMs: {
            p50: Math.round(percentile(callMs, 50)),
            p99: Math.round(percentile(callMs, 99)),
          },
          latencyMs: {
            p50: percentile(latencies, 50),
            p95: percentile(latencies, 95),
            p99: percentile(latencies, 99),
            max: latencies.at(-1),
          },
        },
        null,
        2,
      ),
    );
    for (const ws of sockets) void ws.close();
  } finally {
    child.kill('SIGTERM');
  }
}

await main();
