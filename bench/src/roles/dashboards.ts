/**
 * A dashboard child process: many dashboards tracking the presence of the same nodes, each on its
 * own connection, logging when it learns of every change (docs/performance.md, delivery.ts).
 */
import { Agent, request } from 'node:http';
import { WebSocket } from 'ws';
import {
  DashboardView,
  matchDeliveries,
  type Health,
  type MatchRule,
  type PresenceChange,
} from '../delivery.js';
import { inLanes, preciseNow } from '../ipc.js';
import {
  closeSockets,
  errorCode,
  frameOf,
  onRefusedUpgrade,
  openDeferred,
  paramsFrame,
  settleOnce,
  wsUrl,
} from '../wire.js';

const SUBSCRIPTION_ID = 1;

export interface DashboardSpec {
  /** `feed`: `fleet.events` subscriptions (Tether); `poll`: `presence.list` (baseline). */
  mode: 'feed' | 'poll';
  baseUrl: string;
  /** Participant token (feed mode). */
  token: string;
  dashboards: number;
  /** The tracked nodes (a contiguous, zero-padded id range). */
  nodeIds: string[];
  /** What a dashboard knows of every node before its first observation (null: nothing). */
  initial: Health | null;
  /** Poll mode: each dashboard's interval. */
  pollIntervalMs?: number;
}

/** The superjson-encoded `{ id, data: event }` of a `fleet.events` data frame. */
interface FleetEvent {
  nodeId?: string | null;
  at?: string;
  data?: { to?: Health; cause?: string };
}
type Frame = { id?: unknown; error?: unknown; result?: { type?: string; data?: unknown } };

let spec: DashboardSpec;
let index: Map<string, number>;
let views: DashboardView[] = [];
const errors: string[] = [];
let errorCount = 0;
const sockets: WebSocket[] = [];
const timers: NodeJS.Timeout[] = [];
let agent: Agent | null = null;
let stopped = false;

function error(message: string): void {
  errorCount++;
  if (errors.length < 5) errors.push(message);
}

/** Opens dashboard `i`'s socket and subscription; resolves null once tRPC says `started`. */
function subscribe(i: number): Promise<string | null> {
  return new Promise((resolve) => {
    const settle = settleOnce<string | null>(resolve, 30_000, 'subscribe timeout');
    const socket = new WebSocket(wsUrl(spec.baseUrl), { perMessageDeflate: false });
    sockets.push(socket);
    socket.on('open', () => {
      socket.send(paramsFrame(spec.token));
      const input = { json: { filter: { types: ['presence.changed'] } } };
      const params = { path: 'fleet.events', input };
      socket.send(JSON.stringify({ id: SUBSCRIPTION_ID, method: 'subscription', params }));
    });
    socket.on('message', (data, isBinary) => {
      const arrival = preciseNow();
      const frame = frameOf(socket, data, isBinary) as Frame | null;
      if (frame?.id !== SUBSCRIPTION_ID) return; // reconnect notifications
      if (frame.error) {
        const code = errorCode(frame.error, 'error');
        error(`dashboard ${i}: subscription error ${code}`);
        return settle(code);
      }
      const type = frame.result?.type;
      if (type === 'started') settle(null);
      else if (type === 'stopped') error(`dashboard ${i}: subscription stopped`);
      else if (type === 'data') {
        const event = (frame.result?.data as { json?: { data?: FleetEvent } }).json?.data;
        const node = event?.nodeId ? index.get(event.nodeId) : undefined;
        const to = event?.data?.to;
        if (node === undefined || !to || !event?.at) return; // not a tracked node
        views[i]!.observe(node, to, arrival, Date.parse(event.at), event.data?.cause ?? null);
      }
    });
    onRefusedUpgrade(socket, settle);
    socket.on('error', (e) => settle(e.message));
    socket.on('close', (code) => {
      settle(`closed ${code}`);
      if (!stopped) error(`dashboard ${i}: socket closed ${code}`);
    });
  });
}

/** Dashboard `i` polls every interval from a random phase, one poll at a time. */
function poll(i: number, path: string): void {
  const { hostname, port } = new URL(spec.baseUrl);
  const { pollIntervalMs = 1_000 } = spec;
  let due = preciseNow() + Math.random() * pollIntervalMs;
  const schedule = (): void => {
    timers[i] = setTimeout(once, Math.max(0, due - preciseNow()));
    due += pollIntervalMs;
  };
  type Rows = { result: { data: { json: { nodeId: string; healthState: Health }[] } } };
  const answer = (status: number | undefined, body: string, arrival: number): void => {
    if (status !== 200) return error(`dashboard ${i}: poll HTTP ${status}`);
    try {
      for (const row of (JSON.parse(body) as Rows).result.data.json) {
        const node = index.get(row.nodeId);
        if (node !== undefined) views[i]!.observe(node, row.healthState, arrival, NaN, null);
      }
    } catch (e) {
      error(`dashboard ${i}: poll answer ${String(e)}`);
    }
  };
  function once(): void {
    if (stopped) return;
    const req = request({ agent: agent!, hostname, port, method: 'GET', path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const arrival = preciseNow();
        answer(res.statusCode, Buffer.concat(chunks).toString('utf8'), arrival);
        schedule();
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      error(`dashboard ${i}: poll ${e.code ?? e.message}`);
      schedule();
    });
    req.end();
  }
  schedule();
}

export const handlers = {
  async init(dashboards: DashboardSpec) {
    spec = dashboards;
    const { nodeIds } = spec;
    index = new Map(nodeIds.map((id, i) => [id, i]));
    views = Array.from(
      { length: spec.dashboards },
      () => new DashboardView(nodeIds.length, spec.initial),
    );
    if (spec.mode === 'poll') {
      const range = { json: { from: nodeIds[0], to: nodeIds[nodeIds.length - 1] } };
      const path = `/trpc/presence.list?input=${encodeURIComponent(JSON.stringify(range))}`;
      agent = new Agent({ keepAlive: true, maxSockets: 64 });
      views.forEach((_, i) => poll(i, path));
      return { opened: views.length, failures: [] };
    }
    const failures: string[] = [];
    let deferred = 0;
    // A dashboard whose upgrade admission deferred comes back when told, as a browser's does.
    await inLanes(views.length, 32, async (i) => {
      const opened = await openDeferred(() => subscribe(i));
      deferred += opened.deferred;
      if (opened.error !== null) failures.push(`dashboard ${i}: ${opened.error}`);
    });
    return {
      opened: views.length - failures.length,
      failures: failures.slice(0, 5),
      deferred,
    };
  },
  /** How many dashboards show every tracked node in the `expect`ed health right now. */
  probe: (expect: Health[]): number => views.filter((v) => v.shows(expect)).length,
  /** Matches every dashboard's observations against the driver's changes (delivery.ts). */
  match(changes: PresenceChange[], since: number, rule: MatchRule) {
    const matched = matchDeliveries(views, changes, spec.nodeIds.length, since, rule);
    return { ...matched, errors, errorCount };
  },
  async close() {
    stopped = true;
    for (const timer of timers) clearTimeout(timer);
    agent?.destroy();
    await closeSockets(sockets);
  },
};
