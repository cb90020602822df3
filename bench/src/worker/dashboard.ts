/**
 * A dashboard child process: many dashboards tracking the presence of the same nodes, each on
 * its own connection, recording when it learns of every change (see delivery.ts).
 *
 * - feed (Tether): raw tRPC wire, like the load generators. Per dashboard one WebSocket at
 *   `/trpc?connectionParams=1`, `{ token }` as connectionParams, then one subscription
 *   `{ id: 1, method: 'subscription', params: { path: 'fleet.events', input: { filter: { types:
 *   ['presence.changed'] } } } }`. Tracked events arrive as `{ id: 1, result: { type: 'data', id,
 *   data: { id, data: FleetEventView } } }`. PINGs are answered. No reconnect: a dashboard whose
 *   socket or subscription ends stops receiving, and its missing deliveries show as lost.
 * - poll (baseline, which has no feed): every `pollIntervalMs`, from a random phase, `GET
 *   /trpc/presence.list` of the tracked range over a keep-alive agent; a dashboard waits for its
 *   answer before polling again (a slow server stretches its interval instead of stacking).
 *
 * Arrival times are taken when the message (or the poll's whole answer) has been read.
 */
import { Agent, request } from 'node:http';
import { WebSocket } from 'ws';
import { DashboardView, matchDeliveries } from '../delivery.js';
import { preciseNow } from '../protocol.js';
import type { DashboardSpec, FromDashboard, Health, ToDashboard } from '../presence-protocol.js';
import { settleOnce } from '../settle.js';

const SUBSCRIPTION_ID = 1;
const MAX_ERRORS_KEPT = 5;

function reply(message: FromDashboard): void {
  process.send?.(message);
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

  async start(): Promise<FromDashboard> {
    if (this.#spec.mode === 'poll') {
      this.#startPolling();
      return { type: 'ready', opened: this.views.length, failed: 0, failures: [] };
    }
    let next = 0;
    let failed = 0;
    const failures: string[] = [];
    const lane = async (): Promise<void> => {
      while (next < this.views.length) {
        const i = next++;
        const error = await this.#subscribe(i);
        if (error !== null) {
          failed++;
          if (failures.length < MAX_ERRORS_KEPT) failures.push(`dashboard ${i}: ${error}`);
        }
      }
    };
    const lanes = Math.max(1, Math.min(this.#spec.connectConcurrency, this.views.length));
    await Promise.all(Array.from({ length: lanes }, lane));
    return { type: 'ready', opened: this.views.length - failed, failed, failures };
  }

  /** Opens dashboard `i`'s socket and subscription; resolves null once tRPC says `started`. */
  #subscribe(i: number): Promise<string | null> {
    const view = this.views[i]!;
    const url = `${this.#spec.baseUrl.replace(/^http/, 'ws')}/trpc?connectionParams=1`;
    return new Promise((resolve) => {
      const settle = settleOnce<string | null>(resolve, 30_000, 'subscribe timeout');
      const socket = new WebSocket(url, { perMessageDeflate: false });
      this.#sockets.push(socket);
      socket.on('open', () => {
        socket.send(
          JSON.stringify({ method: 'connectionParams', data: { token: this.#spec.token } }),
        );
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
        if (isBinary) return;
        const text = (
          Array.isArray(data)
            ? Buffer.concat(data)
            : Buffer.isBuffer(data)
              ? data
              : Buffer.from(data)
        ).toString('utf8');
        if (text === 'PING') {
          socket.send('PONG');
          return;
        }
        if (text === 'PONG' || text === '') return;
        let frame: FleetEventFrame;
        try {
          frame = JSON.parse(text) as FleetEventFrame;
        } catch {
          return;
        }
        if (frame.id !== SUBSCRIPTION_ID) return; // reconnect notifications
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
    const closing = this.#sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.readyState === WebSocket.CLOSED) return resolve();
          socket.once('close', () => resolve());
          socket.close(1000, 'bench done');
        }),
    );
    await Promise.race([
      Promise.all(closing),
      new Promise((resolve) => setTimeout(resolve, 3_000).unref()),
    ]);
  }
}

let dashboards: Dashboards | null = null;

process.on('message', (message: ToDashboard) => {
  const fail = (error: unknown): void =>
    reply({ type: 'fatal', message: error instanceof Error ? error.message : String(error) });
  try {
    switch (message.type) {
      case 'init':
        dashboards = new Dashboards(message.spec);
        dashboards.start().then(reply, fail);
        break;
      case 'probe': {
        const caughtUp = dashboards?.views.filter((v) => v.shows(message.expect)).length ?? 0;
        reply({ type: 'probed', caughtUp });
        break;
      }
      case 'match': {
        if (!dashboards) throw new Error('match before init');
        const summary = matchDeliveries(
          dashboards.views,
          message.changes,
          dashboards.nodeCount,
          message.since,
          message.rule,
        );
        reply({
          type: 'matched',
          summary: { ...summary, errors: dashboards.errors, errorCount: dashboards.errorCount },
        });
        break;
      }
      case 'exit':
        void (dashboards?.close() ?? Promise.resolve()).finally(() => process.exit(0));
        break;
    }
  } catch (error) {
    fail(error);
  }
});

// The orchestrator going away must not leave dashboards behind.
process.on('disconnect', () => process.exit(0));
