/**
 * A dashboard child process: many dashboards tracking the presence of the same nodes, each on its
 * own connection, recording when it learns of every change (see delivery.ts).
 */
import { Agent, request } from 'node:http';
import { WebSocket } from 'ws';
import {
  DashboardView,
  matchDeliveries,
  type DeliverySummary,
  type Health,
  type MatchRule,
  type PresenceChange,
} from '../delivery.js';
import { inLanes, preciseNow } from '../ipc.js';
import { closeSockets, frameOf, paramsFrame, settleOnce, wsUrl } from '../wire.js';

const SUBSCRIPTION_ID = 1;
const MAX_ERRORS_KEPT = 5;

/** `feed`: `fleet.events` subscriptions (Tether); `poll`: `presence.list` every interval (baseline). */
export type DashboardMode = 'feed' | 'poll';

export interface DashboardSpec {
  mode: DashboardMode;
  baseUrl: string;
  /** Participant token (feed mode). */
  token: string;
  dashboards: number;
  /** The nodes whose presence the dashboards track (a contiguous, zero-padded id range). */
  nodeIds: string[];
  /** What a dashboard knows of every node before its first observation (null: nothing). */
  initial: Health | null;
  pollIntervalMs: number;
  connectConcurrency: number;
}

interface FleetEventFrame {
  id?: unknown;
  result?: {
    type?: string;
    /** superjson-encoded `{ id, data: event }`; `at` is an ISO string in `json` (a Date in `meta`). */
    data?: {
      json?: {
        data?: { nodeId?: string | null; at?: string; data?: { to?: Health; cause?: string } };
      };
    };
  };
  error?: { json?: { message?: string; data?: { tetherError?: { code?: string } } } };
}

class Dashboards {
  readonly #spec: DashboardSpec;
  readonly #index: Map<string, number>;
  readonly views: DashboardView[];
  readonly errors: string[] = [];
  errorCount = 0;
  readonly #sockets: WebSocket[] = [];
  readonly #timers: NodeJS.Timeout[] = [];
  #agent: Agent | null = null;
  #stopped = false;

  get nodeCount(): number {
    return this.#spec.nodeIds.length;
  }

  constructor(spec: DashboardSpec) {
    this.#spec = spec;
    this.#index = new Map(spec.nodeIds.map((id, i) => [id, i]));
    this.views = Array.from(
      { length: spec.dashboards },
      () => new DashboardView(spec.nodeIds.length, spec.initial),
    );
  }

  #error(message: string): void {
    this.errorCount++;
    if (this.errors.length < MAX_ERRORS_KEPT) this.errors.push(message);
  }

  async start() {
    if (this.#spec.mode === 'poll') {
      this.#startPolling();
      return { opened: this.views.length, failed: 0, failures: [] };
    }
    let failed = 0;
    const failures: string[] = [];
    await inLanes(this.views.length, this.#spec.connectConcurrency, async (i) => {
      const error = await this.#subscribe(i);
      if (error !== null) {
        failed++;
        if (failures.length < MAX_ERRORS_KEPT) failures.push(`dashboard ${i}: ${error}`);
      }
    });
    return { opened: this.views.length - failed, failed, failures };
  }

  /** Opens dashboard `i`'s socket and subscription; resolves null once tRPC says `started`. */
  #subscribe(i: number): Promise<string | null> {
    const view = this.views[i]!;
    return new Promise((resolve) => {
      const settle = settleOnce<string | null>(resolve, 30_000, 'subscribe timeout');
      const socket = new WebSocket(wsUrl(this.#spec.baseUrl), { perMessageDeflate: false });
      this.#sockets.push(socket);
      socket.on('open', () => {
        socket.send(paramsFrame(this.#spec.token));
        socket.send(
          JSON.stringify({
            id: SUBSCRIPTION_ID,
            method: 'subscription',
            params: {
              path: 'fleet.events',
              input: { json: { filter: { types: ['presence.changed'] } } },
            },
          }),
        );
      });
      socket.on('message', (data, isBinary) => {
        const arrival = preciseNow();
        const frame = frameOf(socket, data, isBinary) as FleetEventFrame | null;
        if (frame?.id !== SUBSCRIPTION_ID) return; // reconnect notifications
        if (frame.error) {
          const shape = frame.error.json;
          const code = shape?.data?.tetherError?.code ?? shape?.message ?? 'error';
          this.#error(`dashboard ${i}: subscription error ${code}`);
          settle(code);
          return;
        }
        const type = frame.result?.type;
        if (type === 'started') settle(null);
        else if (type === 'stopped') this.#error(`dashboard ${i}: subscription stopped`);
        else if (type === 'data') {
          const event = frame.result?.data?.json?.data;
          const node = event?.nodeId ? this.#index.get(event.nodeId) : undefined;
          const to = event?.data?.to;
          if (node === undefined || !to || !event?.at) return; // not a tracked node
          view.observe(node, to, arrival, Date.parse(event.at), event.data?.cause ?? null);
        }
      });
      socket.on('error', (error) => settle(error.message));
      socket.on('close', (code) => {
        settle(`closed ${code}`);
        if (!this.#stopped) this.#error(`dashboard ${i}: socket closed ${code}`);
      });
    });
  }

  #startPolling(): void {
    const { nodeIds, pollIntervalMs, baseUrl } = this.#spec;
    const url = new URL(baseUrl);
    const input = encodeURIComponent(
      JSON.stringify({ json: { from: nodeIds[0], to: nodeIds[nodeIds.length - 1] } }),
    );
    const path = `/trpc/presence.list?input=${input}`;
    this.#agent = new Agent({ keepAlive: true, maxSockets: 64 });
    const agent = this.#agent;
    this.views.forEach((view, i) => {
      let due = preciseNow() + Math.random() * pollIntervalMs;
      const poll = (): void => {
        if (this.#stopped) return;
        const req = request(
          { agent, hostname: url.hostname, port: url.port, method: 'GET', path },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => {
              const arrival = preciseNow();
              if (res.statusCode === 200) {
                try {
                  const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
                    result: { data: { json: { nodeId: string; healthState: Health }[] } };
                  };
                  for (const row of body.result.data.json) {
                    const node = this.#index.get(row.nodeId);
                    if (node !== undefined) view.observe(node, row.healthState, arrival);
                  }
                } catch (error) {
                  this.#error(`dashboard ${i}: poll answer ${String(error)}`);
                }
              } else {
                this.#error(`dashboard ${i}: poll HTTP ${res.statusCode}`);
              }
              schedule();
            });
          },
        );
        req.on('error', (error: NodeJS.ErrnoException) => {
          this.#error(`dashboard ${i}: poll ${error.code ?? error.message}`);
          schedule();
        });
        req.end();
      };
      const schedule = (): void => {
        due += pollIntervalMs;
        this.#timers[i] = setTimeout(poll, Math.max(0, due - preciseNow()));
      };
      this.#timers[i] = setTimeout(poll, Math.max(0, due - preciseNow()));
    });
  }

  async close(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#agent?.destroy();
    await closeSockets(this.#sockets);
  }
}

let dashboards: Dashboards | null = null;

export const handlers = {
  init(spec: DashboardSpec) {
    dashboards = new Dashboards(spec);
    return dashboards.start();
  },
  /** How many dashboards show every tracked node in the `expect`ed health right now. */
  probe: (expect: Health[]): number => dashboards?.views.filter((v) => v.shows(expect)).length ?? 0,
  /** Matches every dashboard's observations against the driver's changes (delivery.ts). */
  match(changes: PresenceChange[], since: number, rule: MatchRule): DeliverySummary {
    if (!dashboards) throw new Error('match before init');
    const { views, nodeCount, errors, errorCount } = dashboards;
    return { ...matchDeliveries(views, changes, nodeCount, since, rule), errors, errorCount };
  },
  close: () => dashboards?.close(),
};
