/**
 * The presence driver, a child process of its own (apart from the server and the dashboards):
 * it changes nodes' presence on a steady schedule over WebSocket and logs when it did each
 * change — the reference instant of the fan-out and close → offline latencies.
 *
 * - flip: the nodes stay connected; change i, due at `start + i / rate`, is a heartbeat of node
 *   i mod n with the other health (online ↔ degraded). The change's instant is when the beat is
 *   handed to the socket. A node never has two changes in flight (its turn is skipped instead),
 *   so its changes are committed, and delivered, in the order they were made.
 * - churn: node i opens its socket at `start + i / rate` (bound and online once authenticated;
 *   the change's instant is the open) and closes it (`close(1000)`) `holdMs` later (the instant
 *   of `close()`): the server must then mark it offline.
 */
import { preciseNow, type WorkerSpec } from '../protocol.js';
import type {
  DriverReport,
  DriverSpec,
  FromDriver,
  Health,
  PresenceChange,
  ToDriver,
} from '../presence-protocol.js';
import { WsTransport } from './transport.js';
import { settleOnce } from '../settle.js';

const HEARTBEAT = 'runtimenode.heartbeat';
const MAX_FAILURES_KEPT = 5;

function reply(message: FromDriver): void {
  process.send?.(message);
}

const sleepUntil = (at: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, at - preciseNow())));

class Driver {
  readonly #spec: DriverSpec;
  readonly #transport: WsTransport;
  readonly #changes: PresenceChange[] = [];
  readonly #failures: string[] = [];
  #lagMaxMs = 0;

  constructor(spec: DriverSpec) {
    this.#spec = spec;
    const transportSpec: WorkerSpec = {
      workerIndex: 0,
      transport: 'ws',
      baseUrl: spec.baseUrl,
      nodes: spec.nodes,
      connectConcurrency: 32,
      httpMaxSockets: 1,
      requestTimeoutMs: spec.requestTimeoutMs,
    };
    this.#transport = new WsTransport(transportSpec);
  }

  #failure(message: string): void {
    if (this.#failures.length < MAX_FAILURES_KEPT) this.#failures.push(message);
  }

  /** Flip mode connects every node up front; churn mode connects them on schedule. */
  async connect(): Promise<FromDriver> {
    if (this.#spec.mode === 'churn') return { type: 'ready', opened: 0, failed: 0, failures: [] };
    const report = await this.#transport.connect();
    return {
      type: 'ready',
      opened: report.opened,
      failed: report.failed,
      failures: report.failures,
    };
  }

  async run(startAt: number): Promise<FromDriver> {
    const skipped =
      this.#spec.mode === 'flip' ? await this.#flip(startAt) : await this.#churn(startAt);
    const report: DriverReport = {
      changes: this.#changes,
      skipped,
      failures: this.#failures,
      lagMaxMs: this.#lagMaxMs,
    };
    return { type: 'done', report };
  }

  #late(due: number): void {
    this.#lagMaxMs = Math.max(this.#lagMaxMs, preciseNow() - due);
  }

  /** A beat that must be answered within the request timeout; resolves with the error, if any. */
  #beat(node: number, health: Health): Promise<string | null> {
    return new Promise((resolve) => {
      const settle = settleOnce<string | null>(resolve, this.#spec.requestTimeoutMs, 'timeout');
      const sent = this.#transport.send(
        node,
        HEARTBEAT,
        { nodeId: this.#spec.nodes[node]!.nodeId, healthState: health },
        settle,
      );
      if (!sent) settle('not_connected');
    });
  }

  async #flip(startAt: number): Promise<number> {
    const { nodes, changes, rate } = this.#spec;
    const health: Health[] = nodes.map(() => 'online');
    const busy = nodes.map(() => false);
    const pending: Promise<void>[] = [];
    let skipped = 0;
    for (let i = 0; i < changes; i++) {
      const due = startAt + (i * 1000) / rate;
      await sleepUntil(due);
      this.#late(due);
      const node = i % nodes.length;
      if (busy[node]) {
        skipped++;
        continue;
      }
      const target: Health = health[node] === 'online' ? 'degraded' : 'online';
      const change: PresenceChange = {
        node,
        health: target,
        at: preciseNow(),
        cause: 'heartbeat',
        ok: false,
        ackMs: null,
      };
      this.#changes.push(change);
      busy[node] = true;
      pending.push(
        this.#beat(node, target).then((error) => {
          busy[node] = false;
          change.ackMs = preciseNow() - change.at;
          if (error === null) {
            change.ok = true;
            health[node] = target;
          } else {
            change.error = error;
            this.#failure(`${nodes[node]!.nodeId}: beat ${error}`);
          }
        }),
      );
    }
    await Promise.all(pending);
    return skipped;
  }

  async #churn(startAt: number): Promise<number> {
    const { nodes, rate, holdMs } = this.#spec;
    const lifecycles = nodes.map(async (node, i) => {
      const due = startAt + (i * 1000) / rate;
      await sleepUntil(due);
      this.#late(due);
      const opened: PresenceChange = {
        node: i,
        health: 'online',
        at: preciseNow(),
        // Usually `connection` (the bind), but the first beat may commit before the bind and
        // bring the node online itself (`heartbeat`): either way the node is online.
        cause: null,
        ok: false,
        ackMs: null,
      };
      this.#changes.push(opened);
      const error = await this.#transport.openOne(i);
      opened.ackMs = preciseNow() - opened.at;
      if (error !== null) {
        opened.error = error;
        this.#failure(`${node.nodeId}: open ${error}`);
        return;
      }
      opened.ok = true;
      await sleepUntil(due + holdMs);
      this.#late(due + holdMs);
      const closedAt = preciseNow();
      const closed = this.#transport.closeOne(i, 'bench churn');
      this.#changes.push({
        node: i,
        health: 'offline',
        at: closedAt,
        cause: 'connection',
        ok: closed,
        ackMs: null,
        ...(closed ? {} : { error: 'socket already closed' }),
      });
      if (!closed) this.#failure(`${node.nodeId}: socket closed before its turn`);
    });
    await Promise.all(lifecycles);
    return 0;
  }

  close(): Promise<void> {
    return this.#transport.close();
  }
}

let driver: Driver | null = null;

process.on('message', (message: ToDriver) => {
  const fail = (error: unknown): void =>
    reply({ type: 'fatal', message: error instanceof Error ? error.message : String(error) });
  switch (message.type) {
    case 'init':
      driver = new Driver(message.spec);
      driver.connect().then(reply, fail);
      break;
    case 'start':
      if (!driver) fail(new Error('start before init'));
      else driver.run(message.startAt).then(reply, fail);
      break;
    case 'exit':
      void (driver?.close() ?? Promise.resolve()).finally(() => process.exit(0));
      break;
  }
});

// The orchestrator going away must not leave the driver behind.
process.on('disconnect', () => process.exit(0));
