/**
 * The presence driver, a child process of its own (apart from the server and the dashboards): it
 * changes nodes' presence on a steady schedule over WebSocket and logs when it did each change —
 * the reference instant of the fan-out and close → offline latencies.
 */
import type { Health, PresenceChange } from '../delivery.js';
import { preciseNow, sleepUntil } from '../ipc.js';
import { HEARTBEAT, settleOnce, WsTransport, type NodeIdentity } from '../wire.js';

const MAX_FAILURES_KEPT = 5;

export interface DriverSpec {
  mode: 'flip' | 'churn';
  baseUrl: string;
  nodes: NodeIdentity[];
  /** Flip: changes to make; churn: one open/close pair per node. */
  changes: number;
  /** Changes (flip) or opens (churn) per second. */
  rate: number;
  /** Churn: how long a socket stays open before it is closed. */
  holdMs: number;
  requestTimeoutMs: number;
}

export type DriverReport = Awaited<ReturnType<Driver['run']>>;

class Driver {
  readonly #spec: DriverSpec;
  readonly #transport: WsTransport;
  readonly #changes: PresenceChange[] = [];
  readonly #failures: string[] = [];
  #lagMaxMs = 0;

  constructor(spec: DriverSpec) {
    this.#spec = spec;
    const { baseUrl, nodes, requestTimeoutMs } = spec;
    this.#transport = new WsTransport({
      ...{ baseUrl, nodes, requestTimeoutMs },
      ...{ connectConcurrency: 32, httpMaxSockets: 1 },
    });
  }

  #failure(message: string): void {
    if (this.#failures.length < MAX_FAILURES_KEPT) this.#failures.push(message);
  }

  /** Flip mode connects every node up front; churn mode connects them on schedule. */
  async connect(): Promise<{ opened: number; failures: string[] }> {
    if (this.#spec.mode === 'churn') return { opened: 0, failures: [] };
    const { opened, failures } = await this.#transport.connect();
    return { opened, failures };
  }

  /**
   * The changes made, flip turns skipped (the node's previous change unanswered), connect
   * failures, and how late the driver acted versus its schedule (ms).
   */
  async run(startAt: number) {
    const skipped =
      this.#spec.mode === 'flip' ? await this.#flip(startAt) : await this.#churn(startAt);
    return { changes: this.#changes, skipped, failures: this.#failures, lagMaxMs: this.#lagMaxMs };
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

export const handlers = {
  init(spec: DriverSpec) {
    driver = new Driver(spec);
    return driver.connect();
  },
  /** Runs the schedule from `startAt`; resolves once every change has been answered. */
  run(startAt: number) {
    if (!driver) throw new Error('run before init');
    return driver.run(startAt);
  },
  close: () => driver?.close(),
};
